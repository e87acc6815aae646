namespace Microsoft.ML.Data;

/// <summary>
/// A categorical index stored in an unsigned integer: 0 means missing, valid values are 1..<see cref="Count"/>.
/// Produced by MapValueToKey; class labels of multiclass trainers are keys.
/// </summary>
public sealed class KeyDataViewType : PrimitiveDataViewType
{
    /// <summary>Creates a key type over <paramref name="type"/> (byte, ushort, uint or ulong) with <paramref name="count"/> values.</summary>
    public KeyDataViewType(Type type, ulong count)
        : base(type)
    {
        if (!IsValidDataType(type))
            throw new ArgumentException($"Key type must be byte, ushort, uint or ulong, not {type}.", nameof(type));
        if (count == 0 || count > MaxCount(type))
            throw new ArgumentOutOfRangeException(nameof(count), $"Key count must be in 1..{MaxCount(type)} for {type.Name}, got {count}.");
        Count = count;
    }

    /// <summary>Creates a key type over <paramref name="type"/> with <paramref name="count"/> values.</summary>
    public KeyDataViewType(Type type, int count)
        : this(type, count > 0 ? (ulong)count : throw new ArgumentOutOfRangeException(nameof(count), $"Key count must be positive, got {count}."))
    {
    }

    /// <summary>Whether <paramref name="type"/> can hold keys (byte, ushort, uint, ulong).</summary>
    public static bool IsValidDataType(Type type)
        => type == typeof(byte) || type == typeof(ushort) || type == typeof(uint) || type == typeof(ulong);

    /// <summary>The number of valid key values.</summary>
    public ulong Count { get; }

    private static ulong MaxCount(Type type)
        => type == typeof(byte) ? byte.MaxValue : type == typeof(ushort) ? ushort.MaxValue : type == typeof(uint) ? uint.MaxValue : ulong.MaxValue;

    /// <summary>Equal when raw type and count are equal.</summary>
    public override bool Equals(DataViewType? other)
        => other is KeyDataViewType key && key.RawType == RawType && key.Count == Count;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is DataViewType other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(RawType, Count);

    /// <summary>"<c>Key&lt;UInt32, 0-{Count-1}&gt;</c>".</summary>
    public override string ToString() => $"Key<{RawType.Name}, 0-{Count - 1}>";
}
