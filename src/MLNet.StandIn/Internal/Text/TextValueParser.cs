using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>Parses one text field into a raw column value (invariant culture). Returns false when the field does not parse.</summary>
internal delegate bool FieldParser<T>(string field, out T value);

internal static class TextValueParser
{
    private const NumberStyles Integer = NumberStyles.Integer;
    private const NumberStyles Real = NumberStyles.Float | NumberStyles.AllowThousands;

    public static FieldParser<T> Create<T>(PrimitiveDataViewType type, bool missingRealsAsNaNs, char decimalMarker)
    {
        var culture = decimalMarker == ',' ? new CultureInfo("fr-FR") : CultureInfo.InvariantCulture;
        object parser = type switch
        {
            TextDataViewType => (FieldParser<ReadOnlyMemory<char>>)((string s, out ReadOnlyMemory<char> v) => { v = s.AsMemory(); return true; }),
            BooleanDataViewType => (FieldParser<bool>)ParseBool,
            KeyDataViewType key => KeyParser<T>(key.Count),
            _ when typeof(T) == typeof(float) => (FieldParser<float>)((string s, out float v) =>
            {
                if (IsMissingReal(s, missingRealsAsNaNs, out bool empty)) { v = empty && !missingRealsAsNaNs ? 0 : float.NaN; return true; }
                return float.TryParse(s, Real, culture, out v);
            }),
            _ when typeof(T) == typeof(double) => (FieldParser<double>)((string s, out double v) =>
            {
                if (IsMissingReal(s, missingRealsAsNaNs, out bool empty)) { v = empty && !missingRealsAsNaNs ? 0 : double.NaN; return true; }
                return double.TryParse(s, Real, culture, out v);
            }),
            _ when typeof(T) == typeof(sbyte) => (FieldParser<sbyte>)((string s, out sbyte v) => s.Length == 0 ? Zero(out v) : sbyte.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(byte) => (FieldParser<byte>)((string s, out byte v) => s.Length == 0 ? Zero(out v) : byte.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(short) => (FieldParser<short>)((string s, out short v) => s.Length == 0 ? Zero(out v) : short.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(ushort) => (FieldParser<ushort>)((string s, out ushort v) => s.Length == 0 ? Zero(out v) : ushort.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(int) => (FieldParser<int>)((string s, out int v) => s.Length == 0 ? Zero(out v) : int.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(uint) => (FieldParser<uint>)((string s, out uint v) => s.Length == 0 ? Zero(out v) : uint.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(long) => (FieldParser<long>)((string s, out long v) => s.Length == 0 ? Zero(out v) : long.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(ulong) => (FieldParser<ulong>)((string s, out ulong v) => s.Length == 0 ? Zero(out v) : ulong.TryParse(s, Integer, CultureInfo.InvariantCulture, out v)),
            _ when typeof(T) == typeof(DateTime) => (FieldParser<DateTime>)((string s, out DateTime v) => s.Length == 0 ? Zero(out v) : DateTime.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.None, out v)),
            _ when typeof(T) == typeof(DateTimeOffset) => (FieldParser<DateTimeOffset>)((string s, out DateTimeOffset v) => s.Length == 0 ? Zero(out v) : DateTimeOffset.TryParse(s, CultureInfo.InvariantCulture, DateTimeStyles.None, out v)),
            _ when typeof(T) == typeof(TimeSpan) => (FieldParser<TimeSpan>)((string s, out TimeSpan v) => s.Length == 0 ? Zero(out v) : TimeSpan.TryParse(s, CultureInfo.InvariantCulture, out v)),
            _ => throw new NotSupportedException($"Cannot parse text into {type}."),
        };
        return (FieldParser<T>)parser;
    }

    private static bool Zero<T>(out T value)
    {
        value = default!;
        return true;
    }

    private static bool IsMissingReal(string s, bool missingRealsAsNaNs, out bool empty)
    {
        empty = s.Length == 0;
        return empty || s == "?" || s.Equals("NaN", StringComparison.OrdinalIgnoreCase);
    }

    private static bool ParseBool(string s, out bool value)
    {
        switch (s.ToLowerInvariant())
        {
            case "true" or "t" or "yes" or "y" or "1" or "+1":
                value = true;
                return true;
            case "false" or "f" or "no" or "n" or "0" or "-1" or "":
                value = false;
                return true;
            default:
                value = false;
                return false;
        }
    }

    // A loaded key value is the number itself; 0, empty and out-of-range values are missing (0).
    private static object KeyParser<T>(ulong count)
    {
        return (FieldParser<T>)((string s, out T v) =>
        {
            if (s.Length == 0 || s == "?")
            {
                v = default!;
                return true;
            }
            if (!ulong.TryParse(s, Integer, CultureInfo.InvariantCulture, out ulong raw))
            {
                v = default!;
                return false;
            }
            ulong key = raw > count ? 0 : raw;
            v = (T)Convert.ChangeType(key, typeof(T), CultureInfo.InvariantCulture);
            return true;
        });
    }
}
