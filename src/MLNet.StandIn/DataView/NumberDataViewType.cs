namespace Microsoft.ML.Data;

/// <summary>Numeric column types; one singleton per .NET numeric type, compared by reference.</summary>
public sealed class NumberDataViewType : PrimitiveDataViewType
{
    private NumberDataViewType(Type rawType)
        : base(rawType)
    {
    }

    /// <summary>Signed 8-bit integers.</summary>
    public static NumberDataViewType SByte { get; } = new(typeof(sbyte));

    /// <summary>Unsigned 8-bit integers.</summary>
    public static NumberDataViewType Byte { get; } = new(typeof(byte));

    /// <summary>Signed 16-bit integers.</summary>
    public static NumberDataViewType Int16 { get; } = new(typeof(short));

    /// <summary>Unsigned 16-bit integers.</summary>
    public static NumberDataViewType UInt16 { get; } = new(typeof(ushort));

    /// <summary>Signed 32-bit integers.</summary>
    public static NumberDataViewType Int32 { get; } = new(typeof(int));

    /// <summary>Unsigned 32-bit integers.</summary>
    public static NumberDataViewType UInt32 { get; } = new(typeof(uint));

    /// <summary>Signed 64-bit integers.</summary>
    public static NumberDataViewType Int64 { get; } = new(typeof(long));

    /// <summary>Unsigned 64-bit integers.</summary>
    public static NumberDataViewType UInt64 { get; } = new(typeof(ulong));

    /// <summary>32-bit floating point.</summary>
    public static NumberDataViewType Single { get; } = new(typeof(float));

    /// <summary>64-bit floating point.</summary>
    public static NumberDataViewType Double { get; } = new(typeof(double));

    /// <inheritdoc/>
    public override bool Equals(DataViewType? other) => ReferenceEquals(this, other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    /// <inheritdoc/>
    public override int GetHashCode() => RawType.GetHashCode();

    /// <summary>The raw type's name ("Single", "UInt32", ...).</summary>
    public override string ToString() => RawType.Name;

    internal static NumberDataViewType? FromRawType(Type type)
    {
        if (type == typeof(sbyte)) return SByte;
        if (type == typeof(byte)) return Byte;
        if (type == typeof(short)) return Int16;
        if (type == typeof(ushort)) return UInt16;
        if (type == typeof(int)) return Int32;
        if (type == typeof(uint)) return UInt32;
        if (type == typeof(long)) return Int64;
        if (type == typeof(ulong)) return UInt64;
        if (type == typeof(float)) return Single;
        if (type == typeof(double)) return Double;
        return null;
    }
}
