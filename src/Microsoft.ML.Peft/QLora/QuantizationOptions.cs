using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.QLora;

/// <summary>How <see cref="QuantizedModel.QuantizeLinearLayers"/> and <see cref="QuantizedLinear.FromLinear"/> store weights.</summary>
public sealed record QuantizationOptions
{
    /// <summary>The output heads that stay in full precision by default (PEFT/bitsandbytes skip them too).</summary>
    public static readonly IReadOnlyList<string> DefaultExcludedNames = ["lm_head", "score", "classifier"];

    /// <summary>The 4-bit code book; NF4 is QLoRA's.</summary>
    public FourBitType Type { get; init; } = FourBitType.NF4;

    /// <summary>Values per scale: 32, 64 (QLoRA's), 128, ..., 4096.</summary>
    public int BlockSize { get; init; } = QuantizedTensor4Bit.DefaultBlockSize;

    /// <summary>Double-quantize the scales (8-bit scales, 4.127 instead of 4.5 bits per weight).</summary>
    public bool DoubleQuant { get; init; } = true;

    /// <summary>Store biases in bfloat16 instead of float32.</summary>
    public bool BiasInBFloat16 { get; init; }

    /// <summary>
    /// Linear layers left in full precision: a layer is skipped when its dotted name equals an entry or ends in
    /// "." + entry (so "lm_head" and "classifier" match wherever they sit).
    /// </summary>
    public IReadOnlyList<string> ExcludedNames { get; init; } = DefaultExcludedNames;

    /// <summary>Convert embedding tables to bfloat16 storage (frozen), halving their memory.</summary>
    public bool EmbeddingsToBFloat16 { get; init; }
}
