using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>The default mapping between POCO member types and column types (ML.NET's SchemaDefinition rules).</summary>
internal static class PocoTypes
{
    /// <summary>The column type of <paramref name="member"/>: scalars, keys ([KeyType]) and vectors (arrays, VBuffer).</summary>
    public static DataViewType InferColumnType(MemberInfo member)
    {
        var memberType = PocoMembers.MemberType(member);
        var keyAttribute = member.GetCustomAttribute<KeyTypeAttribute>();
        var vectorAttribute = member.GetCustomAttribute<VectorTypeAttribute>();
        var itemType = VectorItemType(memberType);
        if (itemType != null)
        {
            var item = ScalarType(itemType, keyAttribute, member);
            return vectorAttribute is { Dims.Length: > 0 }
                ? new VectorDataViewType(item, vectorAttribute.Dims)
                : new VectorDataViewType(item);
        }
        if (vectorAttribute != null)
            throw new InvalidOperationException($"Member '{member.DeclaringType?.Name}.{member.Name}' has [VectorType] but its type {memberType} is not an array or VBuffer.");
        return ScalarType(memberType, keyAttribute, member);
    }

    /// <summary>The item type when <paramref name="memberType"/> is an array or <see cref="VBuffer{T}"/>; else null.</summary>
    public static Type? VectorItemType(Type memberType)
    {
        if (memberType.IsArray && memberType.GetArrayRank() == 1)
            return memberType.GetElementType();
        if (memberType.IsGenericType && memberType.GetGenericTypeDefinition() == typeof(VBuffer<>))
            return memberType.GetGenericArguments()[0];
        return null;
    }

    private static PrimitiveDataViewType ScalarType(Type type, KeyTypeAttribute? key, MemberInfo member)
    {
        if (key != null)
        {
            if (!KeyDataViewType.IsValidDataType(type))
                throw new InvalidOperationException($"Member '{member.DeclaringType?.Name}.{member.Name}' has [KeyType] but its type {type} is not byte, ushort, uint or ulong.");
            return new KeyDataViewType(type, key.Count);
        }
        return PrimitiveFor(type)
               ?? throw new NotSupportedException($"Member '{member.DeclaringType?.Name}.{member.Name}' has type {type}, which cannot be mapped to an IDataView column.");
    }

    /// <summary>The primitive column type of a .NET scalar type, or null.</summary>
    public static PrimitiveDataViewType? PrimitiveFor(Type type)
    {
        if (type == typeof(string) || type == typeof(ReadOnlyMemory<char>))
            return TextDataViewType.Instance;
        if (type == typeof(bool))
            return BooleanDataViewType.Instance;
        if (type == typeof(DateTime))
            return DateTimeDataViewType.Instance;
        if (type == typeof(DateTimeOffset))
            return DateTimeOffsetDataViewType.Instance;
        if (type == typeof(TimeSpan))
            return TimeSpanDataViewType.Instance;
        if (type == typeof(DataViewRowId))
            return RowIdDataViewType.Instance;
        return NumberDataViewType.FromRawType(type);
    }
}
