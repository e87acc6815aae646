using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// The quantization pass of <see cref="QuantizedTensor4Bit"/>: blockwise absmax, scaling, nearest code, nibble packing.
/// Every step mirrors bitsandbytes' <c>quantize_4bit</c> in fp32 so that the codes are bit-identical
/// (see <see cref="QuantizedTensor4Bit"/>).
/// </summary>
/// <remarks>
/// The AVX-512 path encodes 16 values per iteration entirely in registers: the sorted distinct levels (≤ 16) and
/// their codes each fit one zmm register, so a 4-step branchless binary search is 4 <c>vpermps</c> lookups; the two
/// bracketing levels' fp32 distances are compared exactly as the scalar <see cref="FourBitCodebook.Encode"/> does
/// (ties to the lower code), and pairs of codes are packed into bytes with one shift-or per 64-bit lane and
/// <c>vpmovqb</c>. The scalar path is the reference it is tested against.
/// </remarks>
internal static class FourBitEncoder
{
    /// <summary>Fills <paramref name="packed"/> (ceil(n/2) bytes) and <paramref name="absmax"/> (one per block).</summary>
    public static void Encode(ReadOnlySpan<float> data, int blockSize, FourBitCodebook code, Span<byte> packed, Span<float> absmax,
        bool allowVector = true)
    {
        int n = data.Length;
        bool vector = allowVector && Avx512F.IsSupported;
        for (int block = 0, start = 0; start < n; block++, start += blockSize)
        {
            ReadOnlySpan<float> values = data.Slice(start, Math.Min(blockSize, n - start));
            float max = MathF.Abs(TensorPrimitives.MaxMagnitude(values));
            absmax[block] = max;

            // bitsandbytes multiplies by the fp32 reciprocal; a subnormal absmax makes it overflow, then divide.
            float reciprocal = 1f / max;
            int done = 0;
            if (max == 0f || float.IsInfinity(reciprocal))
            {
                EncodeScalar(values, max, reciprocal, code, packed, start, 0);
                continue;
            }
            if (vector) done = EncodeAvx512(values, reciprocal, code, packed.Slice(start >> 1));
            EncodeScalar(values, max, reciprocal, code, packed, start, done);
        }
        // Odd count: bitsandbytes pads the scaled values with one 0.0 before packing.
        if ((n & 1) != 0) packed[n >> 1] |= code.ZeroCode;
    }

    /// <summary>Elements [from, values.Length) of the block starting at element <paramref name="start"/>.</summary>
    private static void EncodeScalar(ReadOnlySpan<float> values, float max, float reciprocal, FourBitCodebook code,
        Span<byte> packed, int start, int from)
    {
        bool divide = float.IsInfinity(reciprocal);
        for (int i = from; i < values.Length; i++)
        {
            byte q = max == 0f
                ? code.ZeroCode
                : code.Encode(Math.Clamp(divide ? values[i] / max : values[i] * reciprocal, -1f, 1f));
            int element = start + i;
            if ((element & 1) == 0) packed[element >> 1] = (byte)(q << 4);
            else packed[element >> 1] |= q;
        }
    }

    /// <summary>Encodes whole groups of 16 values of a block (which starts on a byte); returns how many were done.</summary>
    private static int EncodeAvx512(ReadOnlySpan<float> values, float reciprocal, FourBitCodebook code, Span<byte> packed)
    {
        int groups = values.Length >> 4;
        if (groups == 0) return 0;
        Vector512<float> levels = code.SortedLevelsVector;
        Vector512<int> codes = code.SortedCodesVector;
        Vector512<int> lastLevel = Vector512.Create(code.DistinctLevelCount - 1);
        Vector512<float> scale = Vector512.Create(reciprocal);
        Vector512<float> one = Vector512<float>.One;
        ref float source = ref MemoryMarshal.GetReference(values);
        ref byte target = ref MemoryMarshal.GetReference(packed);
        for (int g = 0; g < groups; g++)
        {
            Vector512<float> x = Vector512.Min(Vector512.Max(Vector512.LoadUnsafe(ref source, (nuint)(g * 16)) * scale, -one), one);

            // Largest lo with levels[lo] ≤ x (levels[0] = -1 ≤ x; padding entries are +∞ and never taken).
            Vector512<int> lo = Vector512<int>.Zero;
            lo = Step(lo, 8, levels, x);
            lo = Step(lo, 4, levels, x);
            lo = Step(lo, 2, levels, x);
            lo = Step(lo, 1, levels, x);
            Vector512<int> hi = Vector512.Min(lo + Vector512<int>.One, lastLevel);

            Vector512<float> below = Vector512.Abs(x - Avx512F.PermuteVar16x32(levels, lo));
            Vector512<float> above = Vector512.Abs(x - Avx512F.PermuteVar16x32(levels, hi));
            Vector512<int> codeLo = Avx512F.PermuteVar16x32(codes, lo);
            Vector512<int> codeHi = Avx512F.PermuteVar16x32(codes, hi);
            Vector512<int> tie = Vector512.Min(codeLo, codeHi);
            Vector512<int> result = Vector512.ConditionalSelect(Vector512.LessThan(above, below).AsInt32(), codeHi,
                Vector512.ConditionalSelect(Vector512.LessThan(below, above).AsInt32(), codeLo, tie));

            // Each 64-bit lane holds (even code, odd code): byte = even << 4 | odd.
            Vector512<ulong> pairs = result.AsUInt64();
            Vector512<ulong> bytes = ((pairs << 4) | (pairs >>> 32)) & Vector512.Create(0xFFUL);
            ulong eight = Avx512F.ConvertToVector128Byte(bytes).AsUInt64().ToScalar();
            Unsafe.WriteUnaligned(ref Unsafe.Add(ref target, g * 8), eight);
        }
        return groups * 16;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Step(Vector512<int> lo, int step, Vector512<float> levels, Vector512<float> x)
    {
        Vector512<int> candidate = lo + Vector512.Create(step);
        Vector512<float> level = Avx512F.PermuteVar16x32(levels, candidate);
        return Vector512.ConditionalSelect(Vector512.LessThanOrEqual(level, x).AsInt32(), candidate, lo);
    }
}
