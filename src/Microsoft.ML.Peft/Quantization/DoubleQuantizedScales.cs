namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// QLoRA double quantization of the per-block fp32 scales (absmax) of a 4-bit tensor: the scales are centred by
/// their mean (<see cref="Offset"/>) and quantized to 8 bits with the blockwise dynamic quantizer in blocks of
/// <see cref="BlockSize"/> (256), keeping one fp32 <see cref="NestedAbsmax"/> per nested block. This lowers the
/// scale overhead of 64-value blocks from 32/64 = 0.5 to 8/64 + 32/(64·256) ≈ 0.127 bits per parameter.
/// </summary>
/// <remarks>
/// <para>bitsandbytes' <c>quantize_4bit(compress_statistics=True)</c>: offset = absmax.mean(); codes, nested_absmax =
/// quantize_blockwise(absmax - offset, blocksize=256) with the signed dynamic map. Decoding (<see cref="Decode"/>) is
/// bitsandbytes' <c>dequantize_blockwise(...) + offset</c>: map[code] · nested_absmax, then + offset, each rounded to
/// fp32 (no fused multiply-add).</para>
/// <para>Two documented choices: the mean is computed in double and rounded once to fp32 (torch's fp32 mean sums in
/// an order that depends on the CPU's vector width, so it is not reproducible to the bit — the two agree within an
/// ulp), and the map is the CPU kernel's, with entry 0 = -1 (<see cref="DynamicQuantizationMap.CreateSignedFullRange"/>).
/// Files written elsewhere (e.g. CUDA, entry 0 = -0.99296875) decode with the map they carry.</para>
/// </remarks>
public sealed class DoubleQuantizedScales
{
    /// <summary>bitsandbytes' nested block size for 4-bit double quantization.</summary>
    public const int DefaultBlockSize = 256;

    private static readonly BlockwiseDynamicQuantizer DefaultQuantizer = BlockwiseDynamicQuantizer.Signed(DefaultBlockSize);

    private readonly byte[] _codes;
    private readonly float[] _nestedAbsmax;
    private readonly float[] _map;

    private DoubleQuantizedScales(byte[] codes, float[] nestedAbsmax, float[] map, int blockSize, float offset)
    {
        _codes = codes;
        _nestedAbsmax = nestedAbsmax;
        _map = map;
        BlockSize = blockSize;
        Offset = offset;
    }

    /// <summary>One 8-bit code per scale (bitsandbytes' <c>absmax</c> when double quantized, uint8).</summary>
    public ReadOnlySpan<byte> Codes => _codes;

    /// <summary>One fp32 absmax per nested block of centred scales (<c>nested_absmax</c>).</summary>
    public ReadOnlySpan<float> NestedAbsmax => _nestedAbsmax;

    /// <summary>The 256-entry code the scales were quantized with (<c>nested_quant_map</c>).</summary>
    public ReadOnlySpan<float> Map => _map;

    /// <summary>Scales per nested block (<c>nested_blocksize</c>).</summary>
    public int BlockSize { get; }

    /// <summary>The mean that was subtracted before quantizing (<c>nested_offset</c>).</summary>
    public float Offset { get; }

    /// <summary>Number of scales.</summary>
    public int Count => _codes.Length;

    /// <summary>Double-quantizes <paramref name="absmax"/> exactly as bitsandbytes' CPU path does (see remarks).</summary>
    /// <exception cref="ArgumentException"><paramref name="absmax"/> is empty or holds a non-finite value.</exception>
    public static DoubleQuantizedScales Quantize(ReadOnlySpan<float> absmax)
    {
        if (absmax.IsEmpty) throw new ArgumentException("There are no scales to double-quantize.", nameof(absmax));
        double sum = 0;
        foreach (float value in absmax) sum += value;
        float offset = (float)(sum / absmax.Length);
        if (!float.IsFinite(offset)) throw new ArgumentException($"The scales' mean is {offset}.", nameof(absmax));

        var centred = new float[absmax.Length];
        for (int i = 0; i < centred.Length; i++) centred[i] = absmax[i] - offset;
        var codes = new byte[absmax.Length];
        var nested = new float[DefaultQuantizer.BlockCount(absmax.Length)];
        DefaultQuantizer.Quantize(centred, codes, nested);
        return new DoubleQuantizedScales(codes, nested, DefaultQuantizer.Map.ToArray(), DefaultBlockSize, offset);
    }

    /// <summary>
    /// Wraps stored parts (e.g. read from a checkpoint), without copying them. Checks only consistency of lengths and
    /// finiteness; <paramref name="map"/> may be any 256 values.
    /// </summary>
    /// <exception cref="ArgumentException">A length or value is inconsistent; the message names the part.</exception>
    public static DoubleQuantizedScales FromParts(byte[] codes, float[] nestedAbsmax, float[] map, int blockSize, float offset)
    {
        ArgumentNullException.ThrowIfNull(codes);
        ArgumentNullException.ThrowIfNull(nestedAbsmax);
        ArgumentNullException.ThrowIfNull(map);
        if (blockSize < 1) throw new ArgumentException($"nested_blocksize must be positive, got {blockSize}.", nameof(blockSize));
        if (map.Length != 256) throw new ArgumentException($"nested_quant_map must have 256 entries, got {map.Length}.", nameof(map));
        int blocks = BlockwiseDynamicQuantizer.BlockCount(codes.Length, blockSize);
        if (nestedAbsmax.Length != blocks)
            throw new ArgumentException($"nested_absmax has {nestedAbsmax.Length} entries; {codes.Length} scales in nested blocks of {blockSize} need {blocks}.", nameof(nestedAbsmax));
        CheckFinite(map, "nested_quant_map");
        CheckFinite(nestedAbsmax, "nested_absmax");
        if (!float.IsFinite(offset)) throw new ArgumentException($"nested_offset is {offset}.", nameof(offset));
        return new DoubleQuantizedScales(codes, nestedAbsmax, map, blockSize, offset);
    }

    /// <summary>Scale <paramref name="index"/>: map[code] · nested_absmax[index / BlockSize] + offset, in fp32.</summary>
    public float Decode(int index) => _map[_codes[index]] * _nestedAbsmax[index / BlockSize] + Offset;

    /// <summary>Decodes every scale into <paramref name="destination"/> (length <see cref="Count"/>).</summary>
    public void DecodeAll(Span<float> destination)
    {
        if (destination.Length != Count) throw new ArgumentException($"destination has {destination.Length} entries for {Count} scales.", nameof(destination));
        for (int i = 0; i < destination.Length; i++) destination[i] = Decode(i);
    }

    /// <summary>Bytes held: codes, nested absmax, map and offset.</summary>
    public long StorageBytes => _codes.Length + 4L * _nestedAbsmax.Length + 4L * _map.Length + sizeof(float);

    private static void CheckFinite(float[] values, string name)
    {
        for (int i = 0; i < values.Length; i++)
        {
            if (!float.IsFinite(values[i])) throw new ArgumentException($"{name}[{i}] is {values[i]}.", name);
        }
    }
}
