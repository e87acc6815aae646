using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// Assigns every row a pseudo-random number u in [0, 1) — a hash of the seed and either the row's position or its
/// sampling-key value — and selects rows by ranges of u. Because u depends only on (seed, position or key), the same
/// seed always gives the same split, and rows with equal keys always fall in the same range.
/// </summary>
internal sealed class SplitSampler
{
    private readonly IDataView _data;
    private readonly DataViewSchema.Column? _key;
    private readonly ulong _seed;

    public SplitSampler(IDataView data, string? samplingKeyColumnName, int seed)
    {
        _data = data;
        _seed = (ulong)(uint)seed;
        if (samplingKeyColumnName != null)
        {
            var key = SchemaErrors.Find(data.Schema, "sampling key", samplingKeyColumnName);
            if (key.Type is not PrimitiveDataViewType || key.Type is RowIdDataViewType)
                throw SchemaErrors.Mismatch("samplingKeyColumnName", "sampling key", samplingKeyColumnName, "a scalar column", key.Type.ToString()!);
            _key = key;
        }
    }

    /// <summary>Rows with lo &lt;= u &lt; hi.</summary>
    public IDataView Range(double lo, double hi) => Select(u => u >= lo && u < hi);

    /// <summary>Rows with u outside [lo, hi).</summary>
    public IDataView Outside(double lo, double hi) => Select(u => !(u >= lo && u < hi));

    private IDataView Select(Func<double, bool> keep)
    {
        int[] extra = _key is { } k ? new[] { k.Index } : Array.Empty<int>();
        return new RowSelectionDataView(_data, cursor =>
        {
            Func<ulong> value = _key is { } key ? KeyHasher.Create(cursor, key) : () => (ulong)cursor.Position;
            return () => keep(Uniform(_seed, value())) ? RowDecision.Keep : RowDecision.Skip;
        }, extra, () => null);
    }

    /// <summary>A uniform number in [0, 1) from a 64-bit mix of the seed and a value (53 random mantissa bits).</summary>
    internal static double Uniform(ulong seed, ulong value)
    {
        ulong z = value + 0x9E3779B97F4A7C15UL * (seed + 1);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (z >> 11) * (1.0 / (1UL << 53));
    }
}

/// <summary>Stable 64-bit hashes of scalar column values (FNV-1a over text, raw bits for numbers), the same in every process.</summary>
internal static class KeyHasher
{
    public static Func<ulong> Create(DataViewRow row, DataViewSchema.Column column)
    {
        var type = column.Type.RawType;
        if (type == typeof(ReadOnlyMemory<char>))
        {
            var getter = row.GetGetter<ReadOnlyMemory<char>>(column);
            ReadOnlyMemory<char> text = default;
            return () => { getter(ref text); return Fnv(text.Span); };
        }
        if (type == typeof(float))
        {
            var getter = row.GetGetter<float>(column);
            float f = 0;
            return () => { getter(ref f); return (ulong)BitConverter.SingleToInt32Bits(f == 0 ? 0f : f); };
        }
        if (type == typeof(double))
        {
            var getter = row.GetGetter<double>(column);
            double d = 0;
            return () => { getter(ref d); return (ulong)BitConverter.DoubleToInt64Bits(d == 0 ? 0d : d); };
        }
        if (type == typeof(bool))
        {
            var getter = row.GetGetter<bool>(column);
            bool b = false;
            return () => { getter(ref b); return b ? 1UL : 0UL; };
        }
        var method = typeof(KeyHasher).GetMethod(nameof(Integer), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!.MakeGenericMethod(type);
        return (Func<ulong>)method.Invoke(null, new object[] { row, column })!;
    }

    private static Func<ulong> Integer<T>(DataViewRow row, DataViewSchema.Column column)
        where T : struct, IConvertible
    {
        var getter = row.GetGetter<T>(column);
        T value = default;
        return () =>
        {
            getter(ref value);
            return typeof(T) == typeof(ulong) ? (ulong)(object)value : unchecked((ulong)value.ToInt64(null));
        };
    }

    private static ulong Fnv(ReadOnlySpan<char> text)
    {
        ulong hash = 14695981039346656037UL;
        foreach (char c in text)
        {
            hash ^= c;
            hash *= 1099511628211UL;
        }
        return hash;
    }
}
