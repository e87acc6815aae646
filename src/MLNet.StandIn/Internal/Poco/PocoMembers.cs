using System.Linq.Expressions;
using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>The public instance fields and properties of a POCO that take part in schema mapping, and fast accessors.</summary>
internal static class PocoMembers
{
    public static IEnumerable<MemberInfo> Get(Type type, SchemaDefinition.Direction direction)
    {
        bool read = direction.HasFlag(SchemaDefinition.Direction.Read);
        bool write = direction.HasFlag(SchemaDefinition.Direction.Write);
        foreach (var member in type.GetMembers(BindingFlags.Public | BindingFlags.Instance))
        {
            if (member.GetCustomAttribute<NoColumnAttribute>() != null)
                continue;
            if (member is FieldInfo field)
            {
                if (write && (field.IsInitOnly || field.IsLiteral))
                    continue;
                yield return field;
            }
            else if (member is PropertyInfo property && property.GetIndexParameters().Length == 0)
            {
                if ((read && property.GetMethod?.IsPublic != true) || (write && property.SetMethod?.IsPublic != true))
                    continue;
                yield return property;
            }
        }
    }

    public static MemberInfo Find(Type type, string memberName)
        => (MemberInfo?)type.GetField(memberName, BindingFlags.Public | BindingFlags.Instance)
           ?? type.GetProperty(memberName, BindingFlags.Public | BindingFlags.Instance)
           ?? throw new InvalidOperationException($"Type '{type}' has no public field or property '{memberName}'.");

    public static Type MemberType(MemberInfo member)
        => member is FieldInfo f ? f.FieldType : ((PropertyInfo)member).PropertyType;

    /// <summary>A compiled <c>Func&lt;TRow, TMember&gt;</c> reading the member.</summary>
    public static Func<TRow, TMember> CreateGetter<TRow, TMember>(MemberInfo member)
    {
        var row = Expression.Parameter(typeof(TRow), "row");
        var access = Expression.MakeMemberAccess(row, member);
        return Expression.Lambda<Func<TRow, TMember>>(access, row).Compile();
    }

    /// <summary>A compiled <c>Action&lt;TRow, TMember&gt;</c> assigning the member.</summary>
    public static Action<TRow, TMember> CreateSetter<TRow, TMember>(MemberInfo member)
    {
        var row = Expression.Parameter(typeof(TRow), "row");
        var value = Expression.Parameter(typeof(TMember), "value");
        var assign = Expression.Assign(Expression.MakeMemberAccess(row, member), value);
        return Expression.Lambda<Action<TRow, TMember>>(assign, row, value).Compile();
    }
}
