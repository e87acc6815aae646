namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// The quantization pass of <see cref="QuantizedTensor4Bit"/>: blockwise absmax, scaling, nearest code, nibble packing.
/// </summary>
/// <remarks>
/// Runs once per weight at load time, so it stays scalar and simple; every step mirrors bitsandbytes'
/// <c>quantize_4bit</c> in fp32 so that the codes are bit-identical (see <see cref="QuantizedTensor4Bit"/>).
/// </remarks>
internal static class FourBitEncoder
{
    /// <summary>Fills <paramref name="packed"/> (ceil(n/2) bytes) and <paramref name="absmax"/> (one per block).</summary>
    public static void Encode(ReadOnlySpan<float> data, int blockSize, FourBitCodebook code, Span<byte> packed, Span<float> absmax)
    {
        int n = data.Length;
        for (int block = 0, start = 0; start < n; block++, start += blockSize)
        {
            ReadOnlySpan<float> values = data.Slice(start, Math.Min(blockSize, n - start));
            float max = 0f;
            foreach (float v in values) max = MathF.Max(max, MathF.Abs(v));
            absmax[block] = max;

            // bitsandbytes multiplies by the fp32 reciprocal; a subnormal absmax makes it overflow, then divide.
            float reciprocal = 1f / max;
            bool divide = float.IsInfinity(reciprocal);
            for (int i = 0; i < values.Length; i++)
            {
                byte q;
                if (max == 0f)
                {
                    q = code.ZeroCode;
                }
                else
                {
                    float scaled = divide ? values[i] / max : values[i] * reciprocal;
                    q = code.Encode(Math.Clamp(scaled, -1f, 1f));
                }
                int element = start + i;
                if ((element & 1) == 0) packed[element >> 1] = (byte)(q << 4);
                else packed[element >> 1] |= q;
            }
        }
        // Odd count: bitsandbytes pads the scaled values with one 0.0 before packing.
        if ((n & 1) != 0) packed[n >> 1] |= code.ZeroCode;
    }
}
