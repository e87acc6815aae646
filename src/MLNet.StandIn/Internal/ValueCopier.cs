using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// Copies values of a column's raw type so that stored values never share buffers with consumers: a
/// <see cref="VBuffer{T}"/> is deep-copied (reusing the destination's arrays), every other raw type is immutable or a
/// plain value and is copied by assignment.
/// </summary>
internal static class ValueCopier<T>
{
    /// <summary>Copies <c>source</c> into <c>destination</c>, reusing the destination's buffers.</summary>
    public delegate void CopyInto(in T source, ref T destination);

    public static readonly CopyInto Copy = Create();

    /// <summary>A copy that owns its buffers.</summary>
    public static T Clone(in T source)
    {
        T result = default!;
        Copy(in source, ref result);
        return result;
    }

    private static CopyInto Create()
    {
        if (typeof(T).IsGenericType && typeof(T).GetGenericTypeDefinition() == typeof(VBuffer<>))
        {
            var method = typeof(VBufferCopy).GetMethod(nameof(VBufferCopy.Create), BindingFlags.Static | BindingFlags.Public)!
                .MakeGenericMethod(typeof(T).GetGenericArguments()[0]);
            return (CopyInto)method.Invoke(null, null)!;
        }
        return static (in T source, ref T destination) => destination = source;
    }
}

internal static class VBufferCopy
{
    public static ValueCopier<VBuffer<TItem>>.CopyInto Create<TItem>()
        => static (in VBuffer<TItem> source, ref VBuffer<TItem> destination) => source.CopyTo(ref destination);
}
