using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft;

/// <summary>
/// How a saved adapter's base model was quantized, stored with its <see cref="BaseModelReference"/> (classifier.json,
/// causal_lm.json). Quantization is deterministic, so loading re-quantizes the verified float weights with these settings
/// and gets bit-identical 4-bit layers (no quantized copy of the base is stored).
/// </summary>
internal sealed class QLoraBaseQuantization
{
    /// <summary>bitsandbytes' name of the code book: "nf4", "fp4" or "int4".</summary>
    public string Type { get; set; } = "nf4";

    public int BlockSize { get; set; }

    public bool DoubleQuant { get; set; }

    public bool BiasInBFloat16 { get; set; }

    public bool EmbeddingsToBFloat16 { get; set; }

    public string[] ExcludedNames { get; set; } = [];

    public static QLoraBaseQuantization From(QuantizationOptions options) => new()
    {
        Type = options.Type.ToBitsAndBytesName(),
        BlockSize = options.BlockSize,
        DoubleQuant = options.DoubleQuant,
        BiasInBFloat16 = options.BiasInBFloat16,
        EmbeddingsToBFloat16 = options.EmbeddingsToBFloat16,
        ExcludedNames = [.. options.ExcludedNames],
    };

    /// <summary>The options to re-quantize with.</summary>
    /// <exception cref="InvalidDataException">The stored type is unknown.</exception>
    public QuantizationOptions ToOptions() => new()
    {
        Type = FourBitTypeNames.TryParse(Type, out var type) ? type : throw new InvalidDataException($"unknown 4-bit quantization type '{Type}' in the saved base model description (expected nf4, fp4 or int4)"),
        BlockSize = BlockSize,
        DoubleQuant = DoubleQuant,
        BiasInBFloat16 = BiasInBFloat16,
        EmbeddingsToBFloat16 = EmbeddingsToBFloat16,
        ExcludedNames = ExcludedNames,
    };
}
