namespace Microsoft.ML.Peft.Models;

/// <summary>What <see cref="PretrainedModel.Load"/> did with the checkpoint (transformers' loading info).</summary>
/// <param name="WeightsPath">The weights file (or shard index) read.</param>
/// <param name="InitializedParameters">Head parameters absent from the checkpoint, initialised from the seed.</param>
/// <param name="UnexpectedKeys">Checkpoint tensors the model has no parameter for (e.g. a pre-training head).</param>
/// <param name="IgnoredBuffers">Non-parameter buffers some checkpoints carry (position_ids, rotary inv_freq, GPT-2 attn.bias), skipped silently.</param>
/// <param name="ZeroCopyParameters">Parameters that view the checkpoint's memory directly.</param>
/// <param name="ConvertedParameters">Parameters copied because their dtype was converted (e.g. bfloat16 vectors to float32).</param>
/// <param name="KeyPrefix">How checkpoint names were mapped: e.g. "added 'bert.'" for a bare-backbone checkpoint, else null.</param>
public sealed record ModelLoadReport(
    string WeightsPath,
    IReadOnlyList<string> InitializedParameters,
    IReadOnlyList<string> UnexpectedKeys,
    IReadOnlyList<string> IgnoredBuffers,
    int ZeroCopyParameters,
    int ConvertedParameters,
    string? KeyPrefix);
