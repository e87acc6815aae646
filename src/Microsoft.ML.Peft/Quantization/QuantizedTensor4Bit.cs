using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// A frozen tensor stored in 4 bits per value, bitsandbytes-compatible (<c>Params4bit</c> + <c>QuantState</c>):
/// the row-major flattened values are cut into blocks of <see cref="BlockSize"/>; each block keeps one scale, its
/// absolute maximum (fp32, or 8-bit when <see cref="IsDoubleQuantized"/>), and each value the 4-bit index of the
/// nearest code-book entry to value / scale. Two codes per byte, the earlier element in the high nibble.
/// </summary>
/// <remarks>
/// <para>Layout: element e is in byte e / 2 (high nibble when e is even) of <see cref="PackedCodes"/> and in block
/// e / BlockSize. The last block may be partial; an odd element count leaves one padding nibble, holding the code of
/// 0. Dequantized value = Values[code] · Scale(block), one fp32 multiplication.</para>
/// <para>Quantization (bitsandbytes' <c>quantize_4bit</c>): absmax = max |x| over the block;
/// scaled = clamp(x · fl(1 / absmax), -1, 1); code = nearest entry (<see cref="FourBitCodebook.Encode"/>).
/// Deviations: an all-zero block encodes as the code of 0 (bitsandbytes gets NaN); when 1 / absmax overflows
/// (subnormal absmax) the block divides by absmax instead.</para>
/// <para>Instances are immutable: dequantization may run on many threads at once.</para>
/// </remarks>
public sealed class QuantizedTensor4Bit
{
    /// <summary>bitsandbytes' default 4-bit block size.</summary>
    public const int DefaultBlockSize = 64;

    private static readonly string[] SourceDTypes = ["float32", "float16", "bfloat16"];

    private readonly byte[] _packed;
    private readonly float[]? _absmax;
    private readonly DoubleQuantizedScales? _doubleQuantized;
    private readonly int[] _shape;
    private readonly FourBitCodebook _code;

    private QuantizedTensor4Bit(FourBitCodebook code, int[] shape, int blockSize, byte[] packed,
        float[]? absmax, DoubleQuantizedScales? doubleQuantized, string sourceDType)
    {
        _code = code;
        _shape = shape;
        BlockSize = blockSize;
        _packed = packed;
        _absmax = absmax;
        _doubleQuantized = doubleQuantized;
        SourceDType = sourceDType;
        ElementCount = ElementCountOf(shape, "shape");
        Columns = shape.Length >= 2 ? shape[^1] : (int)ElementCount;
        Rows = (int)(ElementCount / Columns);
    }

    /// <summary>The code book (NF4, FP4 or Int4).</summary>
    public FourBitType QuantType => _code.Type;

    /// <summary>The 16 code values (bitsandbytes' <c>quant_map</c>).</summary>
    public ReadOnlySpan<float> QuantMap => _code.Values;

    /// <summary>Values per scale.</summary>
    public int BlockSize { get; }

    /// <summary>The tensor's shape (a copy).</summary>
    public int[] Shape => (int[])_shape.Clone();

    /// <summary>Number of values.</summary>
    public long ElementCount { get; }

    /// <summary>Rows of the matrix view: the product of all dimensions but the last (1 for a vector).</summary>
    public int Rows { get; }

    /// <summary>Columns of the matrix view: the last dimension (the length, for a vector).</summary>
    public int Columns { get; }

    /// <summary>Number of blocks (scales): ceil(ElementCount / BlockSize).</summary>
    public int BlockCount => (int)((ElementCount + BlockSize - 1) / BlockSize);

    /// <summary>The dtype the values had before quantization, recorded for bitsandbytes ("float32", "float16", "bfloat16").</summary>
    public string SourceDType { get; }

    /// <summary>ceil(ElementCount / 2) bytes of codes (bitsandbytes' <c>weight</c>, uint8).</summary>
    public ReadOnlySpan<byte> PackedCodes => _packed;

    /// <summary>Whether the scales are double-quantized (<see cref="DoubleQuantized"/>) rather than fp32 (<see cref="Absmax"/>).</summary>
    public bool IsDoubleQuantized => _doubleQuantized is not null;

    /// <summary>The fp32 scales; empty when <see cref="IsDoubleQuantized"/>.</summary>
    public ReadOnlySpan<float> Absmax => _absmax;

    /// <summary>The 8-bit scales and their nested state; null unless <see cref="IsDoubleQuantized"/>.</summary>
    public DoubleQuantizedScales? DoubleQuantized => _doubleQuantized;

    /// <summary>
    /// Quantizes <paramref name="data"/> (row-major, <paramref name="shape"/>) to 4 bits.
    /// </summary>
    /// <param name="data">The values; every one must be finite.</param>
    /// <param name="shape">Dimensions, each ≥ 1, whose product is data.Length.</param>
    /// <param name="type">Code book; NF4 is QLoRA's.</param>
    /// <param name="blockSize">32, 64 (default), 128, 256, 512, 1024, 2048 or 4096.</param>
    /// <param name="doubleQuant">Double-quantize the scales (QLoRA's setting; bitsandbytes' <c>compress_statistics</c>).</param>
    /// <param name="sourceDType">Recorded dtype of the original weights.</param>
    /// <exception cref="ArgumentException">Shape, block size, dtype or a value is invalid; the message says which.</exception>
    public static QuantizedTensor4Bit Quantize(ReadOnlySpan<float> data, ReadOnlySpan<int> shape,
        FourBitType type = FourBitType.NF4, int blockSize = DefaultBlockSize, bool doubleQuant = true,
        string sourceDType = "float32")
    {
        int[] dims = shape.ToArray();
        long count = ElementCountOf(dims, nameof(shape));
        if (count != data.Length)
            throw new ArgumentException($"shape [{string.Join(", ", dims)}] holds {count} values but data has {data.Length}.", nameof(shape));
        CheckBlockSize(blockSize, nameof(blockSize));
        CheckSourceDType(sourceDType, nameof(sourceDType));
        CheckFinite(data, nameof(data));

        FourBitCodebook code = FourBitCodebook.For(type);
        var packed = new byte[(data.Length + 1) / 2];
        var absmax = new float[BlockwiseDynamicQuantizer.BlockCount(data.Length, blockSize)];
        FourBitEncoder.Encode(data, blockSize, code, packed, absmax);
        return doubleQuant
            ? new QuantizedTensor4Bit(code, dims, blockSize, packed, null, DoubleQuantizedScales.Quantize(absmax), sourceDType)
            : new QuantizedTensor4Bit(code, dims, blockSize, packed, absmax, null, sourceDType);
    }

    /// <summary>
    /// Wraps stored parts (e.g. from a checkpoint) without re-quantizing. Exactly one of
    /// <paramref name="absmax"/> and <paramref name="doubleQuantized"/> must be given. The arrays are used as they
    /// are, not copied: do not modify them afterwards.
    /// </summary>
    /// <exception cref="ArgumentException">The parts disagree with each other; the message names the part.</exception>
    public static QuantizedTensor4Bit FromParts(FourBitType type, int[] shape, int blockSize, byte[] packedCodes,
        float[]? absmax, DoubleQuantizedScales? doubleQuantized, string sourceDType = "float32")
    {
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(packedCodes);
        int[] dims = (int[])shape.Clone();
        long count = ElementCountOf(dims, nameof(shape));
        CheckBlockSize(blockSize, nameof(blockSize));
        CheckSourceDType(sourceDType, nameof(sourceDType));
        if (packedCodes.Length != (count + 1) / 2)
            throw new ArgumentException($"shape [{string.Join(", ", dims)}] needs {(count + 1) / 2} packed bytes, got {packedCodes.Length}.", nameof(packedCodes));
        if ((absmax is null) == (doubleQuantized is null))
            throw new ArgumentException("Give either fp32 absmax or double-quantized scales, not both or neither.", nameof(absmax));
        int blocks = (int)((count + blockSize - 1) / blockSize);
        int scales = absmax?.Length ?? doubleQuantized!.Count;
        if (scales != blocks)
            throw new ArgumentException($"{scales} scales given; {count} values in blocks of {blockSize} need {blocks}.", nameof(absmax));
        if (absmax is not null)
        {
            for (int i = 0; i < absmax.Length; i++)
            {
                if (!float.IsFinite(absmax[i])) throw new ArgumentException($"absmax[{i}] is {absmax[i]}.", nameof(absmax));
            }
        }
        return new QuantizedTensor4Bit(FourBitCodebook.For(type), dims, blockSize, packedCodes, absmax, doubleQuantized, sourceDType);
    }

    /// <summary>The fp32 scale of block <paramref name="block"/> (decoded when double-quantized).</summary>
    public float Scale(int block) => _absmax is not null ? _absmax[block] : _doubleQuantized!.Decode(block);

    /// <summary>Number of values in block <paramref name="block"/> (BlockSize, less for a partial last block).</summary>
    public int BlockLength(int block)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(block);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(block, BlockCount);
        return (int)Math.Min(BlockSize, ElementCount - (long)block * BlockSize);
    }

    /// <summary>All values, dequantized to a new array.</summary>
    public float[] Dequantize()
    {
        var result = new float[ElementCount];
        DequantizeRange(0, result);
        return result;
    }

    /// <summary>All values into <paramref name="destination"/> (length <see cref="ElementCount"/>).</summary>
    public void Dequantize(Span<float> destination)
    {
        if (destination.Length != ElementCount)
            throw new ArgumentException($"destination has {destination.Length} values; the tensor has {ElementCount}.", nameof(destination));
        DequantizeRange(0, destination);
    }

    /// <summary>Row <paramref name="row"/> of the matrix view into <paramref name="destination"/> (length <see cref="Columns"/>).</summary>
    public void DequantizeRow(int row, Span<float> destination)
    {
        if (destination.Length != Columns)
            throw new ArgumentException($"destination has {destination.Length} values; a row has {Columns}.", nameof(destination));
        DequantizeRowSegment(row, 0, destination);
    }

    /// <summary>
    /// Values [column, column + destination.Length) of row <paramref name="row"/>: what a GEMM packing routine needs
    /// to unpack a k-slice of a weight row straight into its buffer.
    /// </summary>
    public void DequantizeRowSegment(int row, int column, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(row);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(row, Rows);
        ArgumentOutOfRangeException.ThrowIfNegative(column);
        if (column + (long)destination.Length > Columns)
            throw new ArgumentOutOfRangeException(nameof(destination), $"columns [{column}, {column + (long)destination.Length}) exceed the row length {Columns}.");
        DequantizeRange((long)row * Columns + column, destination);
    }

    /// <summary>Block <paramref name="block"/> into <paramref name="destination"/> (length <see cref="BlockLength"/>).</summary>
    public void DequantizeBlock(int block, Span<float> destination)
    {
        int length = BlockLength(block);
        if (destination.Length != length)
            throw new ArgumentException($"destination has {destination.Length} values; block {block} has {length}.", nameof(destination));
        DequantizeRange((long)block * BlockSize, destination);
    }

    /// <summary>Flat elements [start, start + destination.Length) into <paramref name="destination"/>.</summary>
    public void DequantizeRange(long start, Span<float> destination) => DequantizeRange(start, destination, FourBitUnpack.Best);

    internal void DequantizeRange(long start, Span<float> destination, FourBitUnpack.Path path)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        if (start + destination.Length > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(destination), $"elements [{start}, {start + destination.Length}) exceed the tensor's {ElementCount}.");
        long position = start;
        int written = 0;
        int block = (int)(start / BlockSize);
        while (written < destination.Length)
        {
            long blockEnd = Math.Min((long)(block + 1) * BlockSize, ElementCount);
            int count = (int)Math.Min(blockEnd - position, destination.Length - written);
            FourBitUnpack.Unpack(_packed, position, _code.Values, Scale(block), destination.Slice(written, count), path);
            position += count;
            written += count;
            block++;
        }
    }

    /// <summary>
    /// Bytes this tensor occupies as bitsandbytes stores it: packed codes, scales (fp32, or 8-bit codes + nested
    /// fp32 absmax + 256-entry map + offset) and the 16-entry code map.
    /// </summary>
    public long StorageBytes =>
        _packed.Length + (_doubleQuantized?.StorageBytes ?? 4L * _absmax!.Length) + 4L * _code.Values.Length;

    /// <summary>StorageBytes · 8 / ElementCount, fixed tables included.</summary>
    public double BitsPerParameter => StorageBytes * 8.0 / ElementCount;

    /// <summary>
    /// Bits per parameter for a large tensor (fixed tables amortised away): 4 + 32/blockSize, or with double
    /// quantization 4 + 8/blockSize + 32/(blockSize · nestedBlockSize) — 4.126953125 for 64 and 256.
    /// </summary>
    public static double NominalBitsPerParameter(int blockSize, bool doubleQuant, int nestedBlockSize = DoubleQuantizedScales.DefaultBlockSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(blockSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(nestedBlockSize, 1);
        return doubleQuant
            ? 4.0 + 8.0 / blockSize + 32.0 / ((double)blockSize * nestedBlockSize)
            : 4.0 + 32.0 / blockSize;
    }

    /// <summary>Whether bitsandbytes accepts <paramref name="blockSize"/>: a power of two from 32 to 4096.</summary>
    public static bool IsValidBlockSize(int blockSize) => blockSize is >= 32 and <= 4096 && (blockSize & (blockSize - 1)) == 0;

    private static void CheckFinite(ReadOnlySpan<float> data, string parameter)
    {
        // The largest magnitude is NaN or infinite exactly when some value is; only then look for the first one.
        if (float.IsFinite(TensorPrimitives.MaxMagnitude(data))) return;
        for (int i = 0; i < data.Length; i++)
        {
            if (!float.IsFinite(data[i])) throw new ArgumentException($"data[{i}] is {data[i]}; only finite values can be quantized.", parameter);
        }
    }

    private static void CheckBlockSize(int blockSize, string parameter)
    {
        if (!IsValidBlockSize(blockSize))
            throw new ArgumentException($"Block size {blockSize} is not one of 32, 64, 128, 256, 512, 1024, 2048, 4096.", parameter);
    }

    private static void CheckSourceDType(string dtype, string parameter)
    {
        if (Array.IndexOf(SourceDTypes, dtype) < 0)
            throw new ArgumentException($"dtype '{dtype}' is not one of {string.Join(", ", SourceDTypes)}.", parameter);
    }

    private static long ElementCountOf(int[] shape, string parameter)
    {
        if (shape.Length == 0) throw new ArgumentException("The shape must have at least one dimension.", parameter);
        long count = 1;
        foreach (int dim in shape)
        {
            if (dim < 1) throw new ArgumentException($"shape [{string.Join(", ", shape)}] has a dimension < 1.", parameter);
            count *= dim;
            if (count > Array.MaxLength) throw new ArgumentException($"shape [{string.Join(", ", shape)}] has more than {Array.MaxLength} values.", parameter);
        }
        return count;
    }
}
