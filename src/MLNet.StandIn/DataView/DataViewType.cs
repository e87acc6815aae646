namespace Microsoft.ML.Data;

/// <summary>The type of a column of an <see cref="IDataView"/>; <see cref="RawType"/> is the .NET type of its values.</summary>
public abstract class DataViewType : IEquatable<DataViewType>
{
    private protected DataViewType(Type rawType)
    {
        RawType = rawType ?? throw new ArgumentNullException(nameof(rawType));
    }

    /// <summary>The .NET type that getters of this column type produce.</summary>
    public Type RawType { get; }

    /// <summary>Whether <paramref name="other"/> denotes the same column type.</summary>
    public abstract bool Equals(DataViewType? other);
}

/// <summary>Base of column types whose values are structured (vectors); their raw types may hold buffers.</summary>
public abstract class StructuredDataViewType : DataViewType
{
    /// <summary>Creates a structured type with the given raw type.</summary>
    protected StructuredDataViewType(Type rawType)
        : base(rawType)
    {
    }
}

/// <summary>Base of scalar column types; their raw types must not be disposable.</summary>
public abstract class PrimitiveDataViewType : DataViewType
{
    /// <summary>Creates a primitive type with the given raw type.</summary>
    protected PrimitiveDataViewType(Type rawType)
        : base(rawType)
    {
        if (typeof(IDisposable).IsAssignableFrom(rawType))
            throw new ArgumentException($"A primitive column type cannot have a disposable raw type ({rawType}).", nameof(rawType));
    }
}

/// <summary>Text: values are <see cref="ReadOnlyMemory{T}"/> of <see cref="char"/>.</summary>
public sealed class TextDataViewType : PrimitiveDataViewType
{
    private TextDataViewType()
        : base(typeof(ReadOnlyMemory<char>))
    {
    }

    /// <summary>The single instance.</summary>
    public static TextDataViewType Instance { get; } = new();

    /// <inheritdoc/>
    public override bool Equals(DataViewType? other) => ReferenceEquals(this, other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    /// <inheritdoc/>
    public override int GetHashCode() => RawType.GetHashCode();

    /// <summary>"String".</summary>
    public override string ToString() => "String";
}

/// <summary>Boolean values.</summary>
public sealed class BooleanDataViewType : PrimitiveDataViewType
{
    private BooleanDataViewType()
        : base(typeof(bool))
    {
    }

    /// <summary>The single instance.</summary>
    public static BooleanDataViewType Instance { get; } = new();

    /// <inheritdoc/>
    public override bool Equals(DataViewType? other) => ReferenceEquals(this, other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    /// <inheritdoc/>
    public override int GetHashCode() => RawType.GetHashCode();

    /// <summary>"Boolean".</summary>
    public override string ToString() => "Boolean";
}

/// <summary>Row ids: values are <see cref="DataViewRowId"/>.</summary>
public sealed class RowIdDataViewType : PrimitiveDataViewType
{
    private RowIdDataViewType()
        : base(typeof(DataViewRowId))
    {
    }

    /// <summary>The single instance.</summary>
    public static RowIdDataViewType Instance { get; } = new();

    /// <inheritdoc/>
    public override bool Equals(DataViewType? other) => ReferenceEquals(this, other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    /// <inheritdoc/>
    public override int GetHashCode() => RawType.GetHashCode();

    /// <summary>"DataViewRowId".</summary>
    public override string ToString() => "DataViewRowId";
}

/// <summary><see cref="System.DateTime"/> values.</summary>
public sealed class DateTimeDataViewType : PrimitiveDataViewType
{
    private DateTimeDataViewType()
        : base(typeof(DateTime))
    {
    }

    /// <summary>The single instance.</summary>
    public static DateTimeDataViewType Instance { get; } = new();

    /// <inheritdoc/>
    public override bool Equals(DataViewType? other) => ReferenceEquals(this, other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    /// <inheritdoc/>
    public override int GetHashCode() => RawType.GetHashCode();

    /// <summary>"DateTime".</summary>
    public override string ToString() => "DateTime";
}

/// <summary><see cref="System.DateTimeOffset"/> values.</summary>
public sealed class DateTimeOffsetDataViewType : PrimitiveDataViewType
{
    private DateTimeOffsetDataViewType()
        : base(typeof(DateTimeOffset))
    {
    }

    /// <summary>The single instance.</summary>
    public static DateTimeOffsetDataViewType Instance { get; } = new();

    /// <inheritdoc/>
    public override bool Equals(DataViewType? other) => ReferenceEquals(this, other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    /// <inheritdoc/>
    public override int GetHashCode() => RawType.GetHashCode();

    /// <summary>"DateTimeOffset".</summary>
    public override string ToString() => "DateTimeOffset";
}

/// <summary><see cref="System.TimeSpan"/> values.</summary>
public sealed class TimeSpanDataViewType : PrimitiveDataViewType
{
    private TimeSpanDataViewType()
        : base(typeof(TimeSpan))
    {
    }

    /// <summary>The single instance.</summary>
    public static TimeSpanDataViewType Instance { get; } = new();

    /// <inheritdoc/>
    public override bool Equals(DataViewType? other) => ReferenceEquals(this, other);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => ReferenceEquals(this, obj);

    /// <inheritdoc/>
    public override int GetHashCode() => RawType.GetHashCode();

    /// <summary>"TimeSpan".</summary>
    public override string ToString() => "TimeSpan";
}

/// <summary>Base of attributes that give a POCO member a custom column type (registered with <see cref="Register"/>).</summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Property, AllowMultiple = false, Inherited = true)]
public abstract class DataViewTypeAttribute : Attribute, IEquatable<DataViewTypeAttribute>
{
    /// <summary>Registers the attribute's column type.</summary>
    public abstract void Register();

    /// <summary>Whether <paramref name="other"/> describes the same column type.</summary>
    public abstract bool Equals(DataViewTypeAttribute? other);
}
