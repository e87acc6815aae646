using System.Runtime.CompilerServices;

namespace Microsoft.ML.Internal;

/// <summary>Reads key values of any key raw type (byte, ushort, uint, ulong) as <see cref="ulong"/> without boxing
/// (the type tests are JIT-time constants for each instantiation).</summary>
internal static class KeyValueConvert
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong ToUInt64<TKey>(TKey key)
    {
        if (typeof(TKey) == typeof(uint)) return Unsafe.As<TKey, uint>(ref key);
        if (typeof(TKey) == typeof(byte)) return Unsafe.As<TKey, byte>(ref key);
        if (typeof(TKey) == typeof(ushort)) return Unsafe.As<TKey, ushort>(ref key);
        if (typeof(TKey) == typeof(ulong)) return Unsafe.As<TKey, ulong>(ref key);
        throw new NotSupportedException($"{typeof(TKey)} is not a key raw type.");
    }

    /// <summary>The missing value of a raw type as ML.NET defines it: NaN for floats, empty text, default otherwise.</summary>
    public static T Missing<T>()
    {
        if (typeof(T) == typeof(float)) return (T)(object)float.NaN;
        if (typeof(T) == typeof(double)) return (T)(object)double.NaN;
        return default!;
    }
}
