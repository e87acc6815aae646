using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// Copies column values into POCO members (CreateEnumerable, prediction engine output): text becomes string,
/// vectors become dense arrays (reused when the member already holds an array of the right length).
/// </summary>
internal static class PocoWriter
{
    /// <summary>An action that reads <paramref name="column"/> of <paramref name="row"/> and assigns it to <paramref name="member"/> of the target.</summary>
    public static Action<TRow> CreateAssigner<TRow>(DataViewRow row, DataViewSchema.Column column, MemberInfo member)
    {
        var memberType = PocoMembers.MemberType(member);
        var columnType = column.Type;
        var raw = columnType.RawType;
        string where = $"member '{typeof(TRow).Name}.{member.Name}'";
        MethodInfo method;
        if (memberType == raw)
            method = Generic(nameof(Same), typeof(TRow), raw);
        else if (memberType == typeof(string) && raw == typeof(ReadOnlyMemory<char>))
            method = Generic(nameof(Text), typeof(TRow));
        else if (columnType is VectorDataViewType vector && memberType.IsArray && memberType.GetElementType() == vector.ItemType.RawType)
            method = Generic(nameof(Array), typeof(TRow), vector.ItemType.RawType);
        else if (columnType is VectorDataViewType textVector && textVector.ItemType is TextDataViewType && memberType == typeof(string[]))
            method = Generic(nameof(TextArray), typeof(TRow));
        else
            throw new InvalidOperationException(
                $"Can't bind the IDataView column '{column.Name}' of type '{columnType}' to field or property '{member.Name}' of type '{memberType}' ({where}).");
        return (Action<TRow>)method.Invoke(null, new object[] { row, column, member })!;
    }

    /// <summary>Whether a column of <paramref name="columnType"/> can be assigned to a member of <paramref name="memberType"/>.</summary>
    public static bool CanAssign(Type memberType, DataViewType columnType)
    {
        var raw = columnType.RawType;
        if (memberType == raw || (memberType == typeof(string) && raw == typeof(ReadOnlyMemory<char>)))
            return true;
        return columnType is VectorDataViewType vector && memberType.IsArray
               && (memberType.GetElementType() == vector.ItemType.RawType || (vector.ItemType is TextDataViewType && memberType == typeof(string[])));
    }

    private static MethodInfo Generic(string name, params Type[] types)
        => typeof(PocoWriter).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(types);

    private static Action<TRow> Same<TRow, T>(DataViewRow row, DataViewSchema.Column column, MemberInfo member)
    {
        var getter = row.GetGetter<T>(column);
        var set = PocoMembers.CreateSetter<TRow, T>(member);
        return target =>
        {
            T value = default!;
            getter(ref value);
            set(target, ValueCopier<T>.Clone(in value));
        };
    }

    private static Action<TRow> Text<TRow>(DataViewRow row, DataViewSchema.Column column, MemberInfo member)
    {
        var getter = row.GetGetter<ReadOnlyMemory<char>>(column);
        var set = PocoMembers.CreateSetter<TRow, string>(member);
        return target =>
        {
            ReadOnlyMemory<char> value = default;
            getter(ref value);
            set(target, value.ToString());
        };
    }

    private static Action<TRow> Array<TRow, T>(DataViewRow row, DataViewSchema.Column column, MemberInfo member)
    {
        var getter = row.GetGetter<VBuffer<T>>(column);
        var get = PocoMembers.CreateGetter<TRow, T[]?>(member);
        var set = PocoMembers.CreateSetter<TRow, T[]?>(member);
        VBuffer<T> buffer = default;
        return target =>
        {
            getter(ref buffer);
            var array = get(target);
            if (array == null || array.Length != buffer.Length)
                array = new T[buffer.Length];
            buffer.CopyTo(array);
            set(target, array);
        };
    }

    private static Action<TRow> TextArray<TRow>(DataViewRow row, DataViewSchema.Column column, MemberInfo member)
    {
        var getter = row.GetGetter<VBuffer<ReadOnlyMemory<char>>>(column);
        var set = PocoMembers.CreateSetter<TRow, string[]>(member);
        VBuffer<ReadOnlyMemory<char>> buffer = default;
        return target =>
        {
            getter(ref buffer);
            var array = new string[buffer.Length];
            int i = 0;
            foreach (var value in buffer.DenseValues())
                array[i++] = value.ToString();
            set(target, array);
        };
    }
}
