using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Widens storage-precision weights (bfloat16 bits, IEEE half) to fp32 in small row segments during packing, so a
/// low-precision B operand is never materialised as a full fp32 matrix.
/// </summary>
internal static unsafe class Widening
{
    /// <summary>The fp32 bit pattern of 2^112: biased exponent 127 + 112, zero mantissa.</summary>
    private const uint TwoToThe112Bits = (127u + 112u) << 23;

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
    /// <remarks>
    /// .NET exposes no F16C conversion, so the vector paths convert with integer arithmetic: the 15 bits below the
    /// sign, shifted left by 13, are an fp32 bit pattern whose exponent is biased by 127 instead of 15, so multiplying it
    /// by 2^112 rebiases it. That product is exact for normal and subnormal halves alike (a subnormal half lands on an
    /// fp32 subnormal, and scaling by a power of two into the normal range does not round). Infinity and NaN (exponent
    /// 31) get the fp32 exponent 255 with the payload kept and NaNs made quiet (as the runtime's conversion and the
    /// hardware instruction do), and the sign is copied last.
    /// </remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void HalfToSingle(Half* src, float* dst, int count, GemmIsa isa)
    {
        int i = 0;
        ushort* bits = (ushort*)src;
        if (isa == GemmIsa.Avx512)
        {
            for (; i + 32 <= count; i += 32)
            {
                (Vector512<uint> lo, Vector512<uint> hi) = Vector512.Widen(Vector512.Load(bits + i));
                HalfBitsToSingle(lo).Store(dst + i);
                HalfBitsToSingle(hi).Store(dst + i + 16);
            }
        }
        else if (isa == GemmIsa.Avx2)
        {
            for (; i + 16 <= count; i += 16)
            {
                (Vector256<uint> lo, Vector256<uint> hi) = Vector256.Widen(Vector256.Load(bits + i));
                HalfBitsToSingle(lo).Store(dst + i);
                HalfBitsToSingle(hi).Store(dst + i + 8);
            }
        }

        for (; i < count; i++) dst[i] = (float)src[i];
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> HalfBitsToSingle(Vector512<uint> h)
    {
        Vector512<uint> magnitude = (h & Vector512.Create(0x7FFFu)) << 13;
        Vector512<float> value = magnitude.AsSingle() * Vector512.Create(TwoToThe112Bits).AsSingle();
        Vector512<uint> infOrNaN = Vector512.GreaterThanOrEqual(magnitude, Vector512.Create(0x7C00u << 13));
        Vector512<uint> quietNaN = Vector512.GreaterThan(magnitude, Vector512.Create(0x7C00u << 13)) & Vector512.Create(0x00400000u);
        Vector512<uint> special = magnitude | quietNaN | Vector512.Create(0x7F800000u);
        Vector512<uint> result = Vector512.ConditionalSelect(infOrNaN, special, value.AsUInt32());
        return (result | ((h & Vector512.Create(0x8000u)) << 16)).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HalfBitsToSingle(Vector256<uint> h)
    {
        Vector256<uint> magnitude = (h & Vector256.Create(0x7FFFu)) << 13;
        Vector256<float> value = magnitude.AsSingle() * Vector256.Create(TwoToThe112Bits).AsSingle();
        Vector256<uint> infOrNaN = Vector256.GreaterThanOrEqual(magnitude, Vector256.Create(0x7C00u << 13));
        Vector256<uint> quietNaN = Vector256.GreaterThan(magnitude, Vector256.Create(0x7C00u << 13)) & Vector256.Create(0x00400000u);
        Vector256<uint> special = magnitude | quietNaN | Vector256.Create(0x7F800000u);
        Vector256<uint> result = Vector256.ConditionalSelect(infOrNaN, special, value.AsUInt32());
        return (result | ((h & Vector256.Create(0x8000u)) << 16)).AsSingle();
    }
}
