namespace Microsoft.ML.Peft.Quantization;

/// <summary>
/// bitsandbytes' 8-bit "dynamic" code (<c>create_dynamic_map(signed, max_exponent_bits=7, total_bits=8)</c>,
/// Dettmers 2016): 256 sorted values in [-1, 1] whose magnitudes span 10⁻⁷..1 — a dynamic decimal exponent
/// (10⁻⁶..10⁰) with a linear fraction whose resolution doubles with every exponent step.
/// </summary>
/// <remarks>
/// <para>Construction, per exponent step i = 0..6: b = linspace(0.1, 1, n_i) with n_i = 2^i + 1 (signed) or
/// 2^(i+1) + 1 (unsigned); the fraction values are the midpoints (b[k] + b[k+1]) / 2, multiplied by 10^(i-6);
/// the signed map adds their negatives. Then 0 and 1 are appended and the list is sorted: 127 negative values,
/// 0 and 128 positive values (signed); 0 and 255 positive values (unsigned).</para>
/// <para>Everything is fp32 arithmetic as bitsandbytes does it with torch tensors, so the values are bit-identical
/// to the maps in bitsandbytes checkpoints produced with PyTorch on x86-64 (checked against PyTorch 1.13 by
/// build/reference/quant_reference.py). The one subtle step is <c>torch.linspace</c>, reproduced in
/// <see cref="TorchLinspace"/>. Other PyTorch builds may differ by one ulp in a few entries; that never matters for
/// reading files, because the map is stored next to the codes (<c>nested_quant_map</c>).</para>
/// </remarks>
public static class DynamicQuantizationMap
{
    private const int Size = 256;
    private const int MaxExponentBits = 7;

    // Python's 10 ** (i - 6) is a double; torch multiplies an fp32 tensor by it after rounding it to fp32.
    private static readonly double[] DecimalScales = [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0];

    /// <summary>The signed map exactly as <c>create_dynamic_map(signed=True)</c> returns it: entry 0 is -0.99296875.</summary>
    public static float[] CreateSigned() => Create(signed: true);

    /// <summary>The unsigned map (<c>create_dynamic_map(signed=False)</c>), for non-negative data such as Adam's second moment.</summary>
    public static float[] CreateUnsigned() => Create(signed: false);

    /// <summary>
    /// The signed map with entry 0 set to -1.0: bitsandbytes' CPU <c>quantize_blockwise</c> overwrites it in place
    /// (its binary search needs the code to span [-1, 1]), so this is the map a CPU double quantization quantizes
    /// with and stores as <c>nested_quant_map</c>. It also represents a block's most negative value exactly.
    /// </summary>
    public static float[] CreateSignedFullRange()
    {
        float[] map = Create(signed: true);
        map[0] = -1f;
        return map;
    }

    private static float[] Create(bool signed)
    {
        var data = new List<float>(Size);
        for (int i = 0; i < MaxExponentBits; i++)
        {
            int fractionItems = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float[] boundaries = TorchLinspace(0.1f, 1f, fractionItems);
            float scale = (float)DecimalScales[i];
            for (int k = 0; k + 1 < boundaries.Length; k++)
            {
                float mean = (boundaries[k] + boundaries[k + 1]) / 2f;
                data.Add(scale * mean);
                if (signed) data.Add(-scale * mean);
            }
        }
        data.Add(0f);
        data.Add(1f);
        if (data.Count != Size) throw new InvalidOperationException($"dynamic map has {data.Count} entries, expected {Size}");
        data.Sort();
        return [.. data];
    }

    /// <summary>
    /// <c>torch.linspace(start, end, steps)</c> in fp32 as PyTorch's x86-64 CPU kernel computes it.
    /// </summary>
    /// <remarks>
    /// step = (end - start) / (steps - 1). Element i is start + step·i below the midpoint steps/2 and
    /// end - step·(steps-1-i) from it on, each a single fused multiply-add (the compiler contracts the expression).
    /// Runs of 16 elements are produced by the 8-lane AVX2 kernel instead: each group of 8 takes its first element
    /// from the formula above and adds j·step (rounded) to it for lanes j = 1..7; the remainder uses the formula.
    /// This reproduces PyTorch 1.13's output bit for bit for every size used here (3..129) and up to 1000.
    /// </remarks>
    internal static float[] TorchLinspace(float start, float end, int steps)
    {
        var result = new float[steps];
        if (steps == 1)
        {
            result[0] = start;
            return result;
        }
        float step = (end - start) / (steps - 1);
        int halfway = steps / 2;
        float Formula(int index) => index < halfway
            ? MathF.FusedMultiplyAdd(step, index, start)
            : MathF.FusedMultiplyAdd(-step, steps - index - 1, end);

        int i = 0;
        for (; i + 16 <= steps; i += 16)
        {
            for (int group = 0; group < 16; group += 8)
            {
                float baseValue = Formula(i + group);
                for (int lane = 0; lane < 8; lane++) result[i + group + lane] = baseValue + lane * step;
            }
        }
        for (; i < steps; i++) result[i] = Formula(i);
        return result;
    }
}
