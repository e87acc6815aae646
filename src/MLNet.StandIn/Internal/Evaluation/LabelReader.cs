using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>Reads a label column as a float the way ML.NET's evaluators do: key k → k−1 (key 0 → NaN, i.e. unlabeled), bool → 1/0.</summary>
internal static class LabelReader
{
    public static bool IsSupported(DataViewType type, bool allowBoolean)
        => type == NumberDataViewType.Single || type == NumberDataViewType.Double
           || (type is KeyDataViewType key && key.Count > 0)
           || (allowBoolean && type is BooleanDataViewType);

    public static Func<float> Create(DataViewRow row, DataViewSchema.Column column)
    {
        switch (column.Type)
        {
            case var t when t == NumberDataViewType.Single:
            {
                var getter = row.GetGetter<float>(column);
                float value = 0;
                return () => { getter(ref value); return value; };
            }
            case var t when t == NumberDataViewType.Double:
            {
                var getter = row.GetGetter<double>(column);
                double value = 0;
                return () => { getter(ref value); return (float)value; };
            }
            case BooleanDataViewType:
            {
                var getter = row.GetGetter<bool>(column);
                bool value = false;
                return () => { getter(ref value); return value ? 1f : 0f; };
            }
            case KeyDataViewType key:
            {
                var method = typeof(LabelReader).GetMethod(nameof(Key), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
                    .MakeGenericMethod(key.RawType);
                return (Func<float>)method.Invoke(null, new object[] { row, column })!;
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(column), $"Label column '{column.Name}' has unsupported type {column.Type}.");
        }
    }

    private static Func<float> Key<TKey>(DataViewRow row, DataViewSchema.Column column)
    {
        var getter = row.GetGetter<TKey>(column);
        TKey value = default!;
        return () =>
        {
            getter(ref value);
            ulong k = KeyValueConvert.ToUInt64(value);
            return k == 0 ? float.NaN : k - 1;
        };
    }
}
