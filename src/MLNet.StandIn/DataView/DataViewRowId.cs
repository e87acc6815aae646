using System.Globalization;

namespace Microsoft.ML.Data;

/// <summary>A 128-bit row id, unique and stable within its view. <see cref="Fork"/>, <see cref="Next"/> and
/// <see cref="Combine"/> derive new ids deterministically (by hash mixing) for views that create rows.</summary>
public readonly struct DataViewRowId : IComparable<DataViewRowId>, IEquatable<DataViewRowId>
{
    /// <summary>The low 64 bits.</summary>
    public readonly ulong Low;

    /// <summary>The high 64 bits.</summary>
    public readonly ulong High;

    /// <summary>An id from its two halves.</summary>
    public DataViewRowId(ulong low, ulong high)
    {
        Low = low;
        High = high;
    }

    /// <summary>The id as 32 hex digits, high half first.</summary>
    public override string ToString() => "0x" + High.ToString("x16", CultureInfo.InvariantCulture) + Low.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>Orders by <see cref="High"/>, then <see cref="Low"/>.</summary>
    public int CompareTo(DataViewRowId other)
    {
        int c = High.CompareTo(other.High);
        return c != 0 ? c : Low.CompareTo(other.Low);
    }

    /// <inheritdoc/>
    public bool Equals(DataViewRowId other) => Low == other.Low && High == other.High;

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is DataViewRowId other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Low, High);

    /// <summary>A new id derived from this one, distinct from <see cref="Next"/>.</summary>
    public DataViewRowId Fork() => new(Mix(Low ^ 0x9E3779B97F4A7C15UL, High), Mix(High ^ 0xC2B2AE3D27D4EB4FUL, Low));

    /// <summary>The id of the "next" row derived from this one.</summary>
    public DataViewRowId Next() => new(Mix(Low, High + 1), Mix(High, Low + 1));

    /// <summary>An id derived from this one and <paramref name="other"/>.</summary>
    public DataViewRowId Combine(DataViewRowId other) => new(Mix(Low, other.Low), Mix(High, other.High ^ other.Low));

    // SplitMix64-style finaliser: cheap, and every input bit affects every output bit.
    private static ulong Mix(ulong a, ulong b)
    {
        ulong z = a + 0x9E3779B97F4A7C15UL * (b | 1) + b;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
