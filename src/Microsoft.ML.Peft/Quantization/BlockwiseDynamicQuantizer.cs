using System.Numerics.Tensors;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// 8-bit blockwise quantization against a 256-entry code (bitsandbytes <c>quantize_blockwise</c> /
/// <c>dequantize_blockwise</c>, CPU semantics): each block of <see cref="BlockSize"/> values keeps its absolute
/// maximum in fp32 and one byte per value, the index of the code value nearest to value / absmax.
/// </summary>
/// <remarks>
/// <para>Used for double quantization of 4-bit scales (signed map, block 256) and by 8-bit optimizers, which keep
/// Adam's first moment with the signed dynamic map and the second moment with the unsigned one (bitsandbytes' 8-bit
/// Adam, blocks of 256 in current releases, 2048 in early ones).</para>
/// <para>Exactly as bitsandbytes' C++ CPU kernel (<c>quantize_block</c>): normed = x / absmax is an fp32 division (no
/// reciprocal, no clamp: |normed| ≤ 1 holds exactly), the nearest code is found by binary search, and the right
/// neighbour is taken only when it is strictly nearer — ties go to the lower index. The last block may be partial.
/// Deviation: an all-zero block (absmax 0) gives every value the code of 0 instead of bitsandbytes' 0/0 = NaN.</para>
/// <para>The quantizer holds no mutable state: one instance can serve many threads.</para>
/// </remarks>
public sealed class BlockwiseDynamicQuantizer
{
    private const int CodeSize = 256;
    private readonly float[] _map;
    private readonly byte _zeroCode;
    private DynamicCodeBuckets? _buckets;

    /// <summary>Creates a quantizer for a strictly increasing 256-entry code and a block size ≥ 1.</summary>
    public BlockwiseDynamicQuantizer(ReadOnlySpan<float> map, int blockSize)
    {
        if (map.Length != CodeSize) throw new ArgumentException($"The code must have {CodeSize} entries, got {map.Length}.", nameof(map));
        for (int i = 0; i < CodeSize; i++)
        {
            if (!float.IsFinite(map[i])) throw new ArgumentException($"Code entry {i} is {map[i]}.", nameof(map));
            if (i > 0 && !(map[i] > map[i - 1]))
                throw new ArgumentException($"The code must be strictly increasing; entry {i} ({map[i]}) ≤ entry {i - 1} ({map[i - 1]}).", nameof(map));
        }
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        _map = map.ToArray();
        BlockSize = blockSize;
        _zeroCode = Encode(0f);
    }

    /// <summary>Signed dynamic map with entry 0 = -1 (see <see cref="DynamicQuantizationMap.CreateSignedFullRange"/>): for signed data such as Adam's first moment and double quantization.</summary>
    public static BlockwiseDynamicQuantizer Signed(int blockSize = 256) => new(DynamicQuantizationMap.CreateSignedFullRange(), blockSize);

    /// <summary>Unsigned dynamic map: for non-negative data such as Adam's second moment.</summary>
    public static BlockwiseDynamicQuantizer Unsigned(int blockSize = 256) => new(DynamicQuantizationMap.CreateUnsigned(), blockSize);

    /// <summary>Values per block (one fp32 absmax each).</summary>
    public int BlockSize { get; }

    /// <summary>The 256 code values.</summary>
    public ReadOnlySpan<float> Map => _map;

    /// <summary>Number of blocks (absmax values) for <paramref name="length"/> values: ceil(length / blockSize).</summary>
    public int BlockCount(int length) => BlockCount(length, BlockSize);

    /// <summary>ceil(length / blockSize).</summary>
    public static int BlockCount(int length, int blockSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        return (int)(((long)length + blockSize - 1) / blockSize);
    }

    /// <summary>Quantizes <paramref name="source"/> into one code per value and one absmax per block. Allocates nothing once the
    /// code's shared bucket table (<see cref="DynamicCodeBuckets"/>, 64 KB, built on the first call per process) exists.</summary>
    /// <exception cref="ArgumentException">Span lengths disagree, or a value is NaN or infinite (its index is named).</exception>
    public void Quantize(ReadOnlySpan<float> source, Span<byte> codes, Span<float> absmax) =>
        Quantize(source, codes, absmax, BestEncodePath);

    internal void Quantize(ReadOnlySpan<float> source, Span<byte> codes, Span<float> absmax, bool vector) =>
        Quantize(source, codes, absmax, vector ? BestEncodePath : EncodePath.Scalar);

    /// <summary>How <see cref="Quantize(ReadOnlySpan{float}, Span{byte}, Span{float})"/> finds the nearest code; every path gives the same codes.</summary>
    internal enum EncodePath
    {
        /// <summary><see cref="Encode"/> value by value.</summary>
        Scalar,

        /// <summary>8 values at a time, 8-probe binary search with gathers.</summary>
        BinarySearchAvx2,

        /// <summary>8 values at a time, bucket lookup (<see cref="DynamicCodeBuckets"/>) and at most two probes.</summary>
        BucketsAvx2,
    }

    /// <summary>The fastest path this machine and code allow.</summary>
    internal EncodePath BestEncodePath =>
        !Avx2.IsSupported ? EncodePath.Scalar : Buckets.MaxSteps <= MaxBucketSteps ? EncodePath.BucketsAvx2 : EncodePath.BinarySearchAvx2;

    private const int MaxBucketSteps = 2;

    private DynamicCodeBuckets Buckets => _buckets ??= DynamicCodeBuckets.For(_map);

    internal void Quantize(ReadOnlySpan<float> source, Span<byte> codes, Span<float> absmax, EncodePath path)
    {
        CheckLengths(source.Length, codes.Length, absmax.Length, nameof(codes));
        for (int block = 0, start = 0; start < source.Length; block++, start += BlockSize)
        {
            ReadOnlySpan<float> values = source.Slice(start, Math.Min(BlockSize, source.Length - start));
            Span<byte> blockCodes = codes.Slice(start, values.Length);
            float max = MathF.Abs(TensorPrimitives.MaxMagnitude(values)); // NaN or ∞ exactly when a value is
            if (!float.IsFinite(max))
            {
                int bad = 0;
                while (float.IsFinite(values[bad])) bad++;
                throw new ArgumentException($"Value {start + bad} is {values[bad]}; only finite values can be quantized.", nameof(source));
            }
            absmax[block] = max;
            if (max == 0f)
            {
                blockCodes.Fill(_zeroCode);
                continue;
            }
            int done = path switch
            {
                EncodePath.BucketsAvx2 => EncodeBucketsAvx2(values, max, blockCodes),
                EncodePath.BinarySearchAvx2 => EncodeAvx2(values, max, blockCodes),
                _ => 0,
            };
            for (int i = done; i < values.Length; i++) blockCodes[i] = Encode(values[i] / max);
        }
    }

    /// <summary>value = map[code] · absmax[block], in fp32. Allocates nothing.</summary>
    public void Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, Span<float> destination) =>
        Dequantize(codes, absmax, destination, Avx2.IsSupported);

    internal void Dequantize(ReadOnlySpan<byte> codes, ReadOnlySpan<float> absmax, Span<float> destination, bool vector)
    {
        CheckLengths(destination.Length, codes.Length, absmax.Length, nameof(codes));
        float[] map = _map;
        for (int block = 0, start = 0; start < codes.Length; block++, start += BlockSize)
        {
            int count = Math.Min(BlockSize, codes.Length - start);
            float scale = absmax[block];
            ReadOnlySpan<byte> blockCodes = codes.Slice(start, count);
            Span<float> output = destination.Slice(start, count);
            int done = vector ? DecodeAvx2(blockCodes, scale, output) : 0;
            for (int i = done; i < count; i++) output[i] = map[blockCodes[i]] * scale;
        }
    }

    /// <summary>The index of the code value nearest to <paramref name="normalized"/>; ties to the lower index.</summary>
    public byte Encode(float normalized)
    {
        float[] map = _map;
        if (normalized <= map[0]) return 0;
        if (normalized >= map[CodeSize - 1]) return CodeSize - 1;
        // Invariant: map[lo] ≤ x < map[hi].
        int lo = 0, hi = CodeSize - 1;
        while (hi - lo > 1)
        {
            int mid = (lo + hi) >> 1;
            if (map[mid] <= normalized) lo = mid; else hi = mid;
        }
        return MathF.Abs(normalized - map[hi]) < MathF.Abs(normalized - map[lo]) ? (byte)hi : (byte)lo;
    }

    /// <summary>
    /// <see cref="Encode"/> for 8 values at a time: an 8-step branchless binary search with <c>vgatherdps</c>
    /// lookups into the map (the 1 KB map stays in L1), then the same strict nearer-neighbour test.
    /// Returns how many values were encoded (whole groups of 8).
    /// </summary>
    private unsafe int EncodeAvx2(ReadOnlySpan<float> values, float max, Span<byte> codes)
    {
        if (!Avx2.IsSupported) return 0;
        int groups = values.Length >> 3;
        Vector256<float> divisor = Vector256.Create(max);
        fixed (float* map = _map)
        {
            for (int g = 0; g < groups; g++)
            {
                Vector256<float> x = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(values), (nuint)(g * 8)) / divisor;
                // Largest lo with map[lo] ≤ x, or 0 when x < map[0].
                Vector256<int> lo = Vector256<int>.Zero;
                for (int step = CodeSize / 2; step >= 1; step >>= 1)
                {
                    Vector256<int> candidate = lo + Vector256.Create(step);
                    Vector256<float> level = Avx2.GatherVector256(map, candidate, sizeof(float));
                    lo = Vector256.ConditionalSelect(Vector256.LessThanOrEqual(level, x).AsInt32(), candidate, lo);
                }
                StoreNearest(x, lo, map, codes, g * 8);
            }
        }
        return groups * 8;
    }

    /// <summary>
    /// <see cref="Encode"/> for 8 values at a time through <see cref="DynamicCodeBuckets"/>: the bucket of x's
    /// order-preserving key gives the binary search's answer for the bucket's smallest float, at most
    /// <see cref="MaxBucketSteps"/> comparisons with the next code values finish it, then the same strict nearer-neighbour
    /// test. Four dependent gathers instead of ten; the same codes.
    /// </summary>
    private unsafe int EncodeBucketsAvx2(ReadOnlySpan<float> values, float max, Span<byte> codes)
    {
        if (!Avx2.IsSupported) return 0;
        var buckets = Buckets;
        int groups = values.Length >> 3, steps = buckets.MaxSteps;
        Vector256<float> divisor = Vector256.Create(max);
        Vector256<int> last = Vector256.Create(CodeSize - 1);
        Vector256<int> magnitude = Vector256.Create(0x7FFF_FFFF), signBit = Vector256.Create(unchecked((int)0x8000_0000));
        Vector256<int> lowByte = Vector256.Create(0xFF);
        fixed (float* map = _map)
        fixed (byte* lower = buckets.Lower)
        {
            for (int g = 0; g < groups; g++)
            {
                Vector256<float> x = Vector256.LoadUnsafe(ref MemoryMarshal.GetReference(values), (nuint)(g * 8)) / divisor;
                // Order-preserving key: negatives (sign = −1) get every bit flipped, positives only the sign bit.
                Vector256<int> bits = x.AsInt32();
                Vector256<int> key = bits ^ (Vector256.ShiftRightArithmetic(bits, 31) & magnitude) ^ signBit;
                Vector256<int> bucket = Vector256.ShiftRightLogical(key, DynamicCodeBuckets.Shift);
                Vector256<int> lo = Avx2.GatherVector256((int*)lower, bucket, 1) & lowByte;
                for (int step = 0; step < steps; step++)
                {
                    Vector256<int> candidate = Vector256.Min(lo + Vector256<int>.One, last);
                    Vector256<float> level = Avx2.GatherVector256(map, candidate, sizeof(float));
                    lo = Vector256.ConditionalSelect(Vector256.LessThanOrEqual(level, x).AsInt32(), candidate, lo);
                }
                StoreNearest(x, lo, map, codes, g * 8);
            }
        }
        return groups * 8;
    }

    /// <summary>
    /// The strict nearer-neighbour test of <see cref="Encode"/> for 8 values, given lo = the largest index with
    /// map[lo] ≤ x (0 when none): the right neighbour wins only when strictly nearer. Writes the 8 codes at
    /// <paramref name="offset"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void StoreNearest(Vector256<float> x, Vector256<int> lo, float* map, Span<byte> codes, int offset)
    {
        Vector256<int> hi = Vector256.Min(lo + Vector256<int>.One, Vector256.Create(CodeSize - 1));
        Vector256<float> below = Vector256.Abs(x - Avx2.GatherVector256(map, lo, sizeof(float)));
        Vector256<float> above = Vector256.Abs(x - Avx2.GatherVector256(map, hi, sizeof(float)));
        Vector256<int> result = Vector256.ConditionalSelect(Vector256.LessThan(above, below).AsInt32(), hi, lo);
        Vector256<ushort> shorts = Vector256.Narrow(result.AsUInt32(), Vector256<uint>.Zero);
        ulong eight = Vector256.Narrow(shorts, Vector256<ushort>.Zero).AsUInt64().ToScalar();
        Unsafe.WriteUnaligned(ref codes[offset], eight);
    }

    /// <summary>map[code] · scale for 8 codes at a time (zero-extend, <c>vgatherdps</c>, multiply).</summary>
    private unsafe int DecodeAvx2(ReadOnlySpan<byte> codes, float scale, Span<float> output)
    {
        if (!Avx2.IsSupported) return 0;
        int groups = codes.Length >> 3;
        Vector256<float> factor = Vector256.Create(scale);
        fixed (float* map = _map)
        fixed (byte* source = codes)
        {
            for (int g = 0; g < groups; g++)
            {
                Vector256<int> index = Avx2.ConvertToVector256Int32(source + g * 8);
                (Avx2.GatherVector256(map, index, sizeof(float)) * factor).StoreUnsafe(ref MemoryMarshal.GetReference(output), (nuint)(g * 8));
            }
        }
        return groups * 8;
    }

    private void CheckLengths(int values, int codes, int absmax, string codesName)
    {
        if (codes != values)
            throw new ArgumentException($"{codesName} has {codes} entries for {values} values.", codesName);
        int blocks = BlockCount(values);
        if (absmax != blocks)
            throw new ArgumentException($"absmax has {absmax} entries; {values} values in blocks of {BlockSize} need {blocks}.", nameof(absmax));
    }
}
