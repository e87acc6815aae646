using Microsoft.ML;

namespace MLNet.StandIn.Tests;

internal static class ColumnReading
{
    /// <summary>Reads a whole column via CreateEnumerable-like cursoring (text as string, others as their raw type).</summary>
    public static T[] GetColumn<T>(this IDataView data, string name)
    {
        var column = data.Schema[name];
        var values = new List<T>();
        using var cursor = data.GetRowCursor(new[] { column });
        if (typeof(T) == typeof(string))
        {
            var getter = cursor.GetGetter<ReadOnlyMemory<char>>(column);
            ReadOnlyMemory<char> text = default;
            while (cursor.MoveNext())
            {
                getter(ref text);
                values.Add((T)(object)text.ToString());
            }
        }
        else
        {
            var getter = cursor.GetGetter<T>(column);
            T value = default!;
            while (cursor.MoveNext())
            {
                getter(ref value);
                values.Add(value);
                value = default!; // getters reuse the buffers they are given: start each row fresh
            }
        }
        return values.ToArray();
    }
}
