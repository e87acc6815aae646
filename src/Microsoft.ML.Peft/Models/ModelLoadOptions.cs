using Microsoft.ML.Peft.Hub;

namespace Microsoft.ML.Peft.Models;

/// <summary>Options of <see cref="PretrainedModel.Load"/>.</summary>
public sealed record ModelLoadOptions
{
    /// <summary>
    /// The head to build; null infers it from config.json's <c>architectures</c> (decoders default to
    /// <see cref="ModelTask.CausalLM"/>; an encoder checkpoint without a task head, e.g. <c>BertForMaskedLM</c>, needs it set).
    /// </summary>
    public ModelTask? Task { get; init; }

    /// <summary>Overrides config.json's <c>num_labels</c> for a classification head (labels reset to LABEL_0…).</summary>
    public int? NumLabels { get; init; }

    /// <summary>
    /// Seed of the generator that initialises heads missing from the checkpoint (N(0, initializer_range²), as Hugging
    /// Face's <c>_init_weights</c>) and drives dropout masks in training mode.
    /// </summary>
    public ulong Seed { get; init; } = 42;

    /// <summary>
    /// Widen bfloat16/float16 checkpoint matrices to float32 copies (trainable). By default they stay in their storage
    /// dtype, zero-copy and frozen; vectors (norm weights, biases) and task heads are always float32.
    /// </summary>
    public bool ConvertToFloat32 { get; init; }

    /// <summary>
    /// transformers' <c>ignore_mismatched_sizes</c>: a head tensor whose shape differs from the model's (e.g. a
    /// classifier trained for another number of labels) is re-initialised instead of failing the load. Backbone
    /// tensors must always match.
    /// </summary>
    public bool IgnoreMismatchedSizes { get; init; }

    /// <summary>Hub / cache settings used when the model reference is a hub id; null = defaults (environment).</summary>
    public PretrainedSourceOptions? Source { get; init; }

    /// <summary>Receives warnings (initialised heads, unexpected checkpoint keys), as transformers logs them; null = silent.</summary>
    public Action<string>? Log { get; init; }
}
