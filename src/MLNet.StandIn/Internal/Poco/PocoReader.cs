using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// Column getters that read POCO members (LoadFromEnumerable, prediction engine input): strings become
/// <see cref="ReadOnlyMemory{T}"/>, arrays become <see cref="VBuffer{T}"/>, key members out of range become 0 (missing).
/// The per-member delegate is built once per cursor; reading a value is a compiled member access plus the conversion.
/// </summary>
internal static class PocoReader
{
    /// <summary>A <c>ValueGetter&lt;RawType&gt;</c> of <paramref name="columnType"/> reading <paramref name="member"/> of the object returned by <paramref name="current"/>.</summary>
    public static Delegate CreateGetter<TRow>(MemberInfo member, DataViewType columnType, Func<TRow> current)
    {
        var memberType = PocoMembers.MemberType(member);
        var raw = columnType.RawType;
        string where = $"member '{typeof(TRow).Name}.{member.Name}'";
        MethodInfo method;
        if (memberType == raw && columnType is KeyDataViewType key)
            return (Delegate)Generic(nameof(Key), typeof(TRow), memberType).Invoke(null, new object[] { member, current, key.Count })!;
        if (memberType == raw)
            method = Generic(nameof(Same), typeof(TRow), memberType);
        else if (memberType == typeof(string) && raw == typeof(ReadOnlyMemory<char>))
            method = Generic(nameof(Text), typeof(TRow));
        else if (columnType is VectorDataViewType vector && memberType.IsArray)
        {
            var item = memberType.GetElementType()!;
            if (item == vector.ItemType.RawType)
                method = Generic(nameof(Array), typeof(TRow), item);
            else if (item == typeof(string) && vector.ItemType is TextDataViewType)
                method = Generic(nameof(TextArray), typeof(TRow));
            else
                throw Mismatch(where, memberType, columnType);
            return (Delegate)method.Invoke(null, new object[] { member, current, vector.Size, where })!;
        }
        else
            throw Mismatch(where, memberType, columnType);
        return (Delegate)method.Invoke(null, new object[] { member, current })!;
    }

    internal static InvalidOperationException Mismatch(string where, Type memberType, DataViewType columnType)
        => new($"Can't bind {where} of type '{memberType}' to an IDataView column of type '{columnType}'.");

    private static MethodInfo Generic(string name, params Type[] types)
        => typeof(PocoReader).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Static)!.MakeGenericMethod(types);

    private static ValueGetter<T> Same<TRow, T>(MemberInfo member, Func<TRow> current)
    {
        var get = PocoMembers.CreateGetter<TRow, T>(member);
        var copy = ValueCopier<T>.Copy;
        return (ref T dst) =>
        {
            T value = get(current());
            copy(in value, ref dst);
        };
    }

    private static ValueGetter<T> Key<TRow, T>(MemberInfo member, Func<TRow> current, ulong count)
        where T : struct, IConvertible
    {
        var get = PocoMembers.CreateGetter<TRow, T>(member);
        return (ref T dst) =>
        {
            T value = get(current());
            dst = value.ToUInt64(null) > count ? default : value;
        };
    }

    private static ValueGetter<ReadOnlyMemory<char>> Text<TRow>(MemberInfo member, Func<TRow> current)
    {
        var get = PocoMembers.CreateGetter<TRow, string?>(member);
        return (ref ReadOnlyMemory<char> dst) => dst = (get(current()) ?? "").AsMemory();
    }

    private static ValueGetter<VBuffer<T>> Array<TRow, T>(MemberInfo member, Func<TRow> current, int size, string where)
    {
        var get = PocoMembers.CreateGetter<TRow, T[]?>(member);
        return (ref VBuffer<T> dst) =>
        {
            var values = get(current()) ?? System.Array.Empty<T>();
            CheckSize(values.Length, size, where);
            var editor = VBufferEditor.Create(ref dst, values.Length);
            values.CopyTo(editor.Values);
            dst = editor.Commit();
        };
    }

    private static ValueGetter<VBuffer<ReadOnlyMemory<char>>> TextArray<TRow>(MemberInfo member, Func<TRow> current, int size, string where)
    {
        var get = PocoMembers.CreateGetter<TRow, string?[]?>(member);
        return (ref VBuffer<ReadOnlyMemory<char>> dst) =>
        {
            var values = get(current()) ?? System.Array.Empty<string>();
            CheckSize(values.Length, size, where);
            var editor = VBufferEditor.Create(ref dst, values.Length);
            for (int i = 0; i < values.Length; i++)
                editor.Values[i] = (values[i] ?? "").AsMemory();
            dst = editor.Commit();
        };
    }

    private static void CheckSize(int actual, int expected, string where)
    {
        if (expected > 0 && actual != expected)
            throw new InvalidOperationException($"Incorrect number of elements in {where}: expected {expected} (from its vector type), got {actual}.");
    }
}
