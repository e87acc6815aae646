using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Widens storage-precision weights (bfloat16 bits, IEEE half) to fp32 in small row segments during packing, so a
/// low-precision B operand is never materialised as a full fp32 matrix.
/// </summary>
internal static unsafe class Widening
{
    /// <summary>
    /// dst[i] = the float whose upper 16 bits are src[i] (bfloat16 is the top half of an fp32, so widening is exact).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Bf16ToSingle(ushort* src, float* dst, int count, GemmIsa isa)
    {
        int i = 0;
        if (isa == GemmIsa.Avx512)
        {
            for (; i + 32 <= count; i += 32)
            {
                (Vector512<uint> lo, Vector512<uint> hi) = Vector512.Widen(Vector512.Load(src + i));
                (lo << 16).AsSingle().Store(dst + i);
                (hi << 16).AsSingle().Store(dst + i + 16);
            }
        }
        else if (isa == GemmIsa.Avx2)
        {
            for (; i + 16 <= count; i += 16)
            {
                (Vector256<uint> lo, Vector256<uint> hi) = Vector256.Widen(Vector256.Load(src + i));
                (lo << 16).AsSingle().Store(dst + i);
                (hi << 16).AsSingle().Store(dst + i + 8);
            }
        }

        for (; i < count; i++) dst[i] = BitConverter.Int32BitsToSingle(src[i] << 16);
    }

    /// <summary>dst[i] = (float)src[i]; exact, every half value is representable in fp32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void HalfToSingle(Half* src, float* dst, int count, GemmIsa isa)
    {
        if (isa == GemmIsa.Scalar)
        {
            for (int i = 0; i < count; i++) dst[i] = (float)src[i];
            return;
        }

        TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src, count), new Span<float>(dst, count));
    }
}
