namespace Microsoft.ML.Peft.QLora;

/// <summary>What <see cref="QuantizedModel.MergeAndRequantize"/> did, and what it cost in logits on the fixed batch.</summary>
/// <param name="MergedLayers">Paths of the adapter layers folded into their (dequantized) base and unwrapped.</param>
/// <param name="DequantizedLayers">Paths of the 4-bit layers turned into float32 before merging (as they were named then).</param>
/// <param name="RequantizedLayers">Paths of the layers quantized again after merging (empty when not re-quantizing).</param>
/// <param name="MaxLogitChangeFromMerge">
/// Largest |logit| change between the adapted 4-bit model and the merged float32 model: fp32 rounding only, since
/// dequantize-then-add computes the same function.
/// </param>
/// <param name="MaxLogitChangeFromRequantization">
/// Largest |logit| change that re-quantizing the merged weights causes (0 when not re-quantizing): the merged update
/// moves weights between 4-bit levels, and rounding them back cannot be avoided (PEFT warns about the same).
/// </param>
/// <param name="MaxLogitChange">Largest |logit| change from the model before the call to the model after it.</param>
public sealed record MergeReport(
    IReadOnlyList<string> MergedLayers,
    IReadOnlyList<string> DequantizedLayers,
    IReadOnlyList<string> RequantizedLayers,
    float MaxLogitChangeFromMerge,
    float MaxLogitChangeFromRequantization,
    float MaxLogitChange);
