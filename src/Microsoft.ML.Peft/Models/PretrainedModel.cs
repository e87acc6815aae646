using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.NN;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A transformer with a task head, built from a Hugging Face config.json, whose module tree's dotted parameter names
/// are exactly the checkpoint's keys ("bert.encoder.layer.0.attention.self.query.weight",
/// "model.layers.0.self_attn.q_proj.weight", "classifier.weight", ...). Every projection sits in a
/// <c>ModuleSlot&lt;LinearLayer&gt;</c>, so PEFT methods replace it by path (<see cref="Module.ReplaceModule"/>).
/// </summary>
/// <remarks>
/// Load with <see cref="Load"/> (or the typed <see cref="LoadForSequenceClassification"/>,
/// <see cref="LoadForTokenClassification"/>, <see cref="LoadForCausalLM"/>); build randomly initialised with
/// <see cref="Create"/>. Models come back in evaluation mode (dropout off), as <c>from_pretrained</c> returns them;
/// call <see cref="Module.Train"/> before training.
/// </remarks>
public abstract partial class PretrainedModel : Module
{
    private protected PretrainedModel(ModelConfig config, string backbonePrefix)
    {
        ArgumentNullException.ThrowIfNull(config);
        Config = config;
        BackbonePrefix = backbonePrefix;
    }

    /// <summary>The configuration the model was built from.</summary>
    public ModelConfig Config { get; }

    /// <summary>The head this model carries.</summary>
    public abstract ModelTask Task { get; }

    /// <summary>Name of the backbone module ("bert", "roberta", "distilbert", "model", "transformer", "gpt_neox").</summary>
    public string BackbonePrefix { get; }

    /// <summary>Width of the hidden states.</summary>
    public int HiddenSize => Config.HiddenSize;

    /// <summary>The backbone module (an <see cref="EncoderModel"/> or a <see cref="DecoderModel"/>).</summary>
    public Module Backbone => GetModule(BackbonePrefix);

    /// <summary>
    /// Dotted names of the task-head modules that are not part of the pretrained backbone ("classifier", "score",
    /// "pre_classifier", "lm_head", ...): the candidates for PEFT's <c>modules_to_save</c>.
    /// </summary>
    public abstract IReadOnlyList<string> HeadModuleNames { get; }

    /// <summary>What loading did (null for a model built with <see cref="Create"/>).</summary>
    public ModelLoadReport? LoadReport { get; internal set; }

    /// <summary>
    /// Modules whose parameters may be absent from a checkpoint and are then initialised (the heads, plus e.g. BERT's
    /// pooler, which transformers also initialises when missing). Any other missing tensor is an error.
    /// </summary>
    internal virtual IReadOnlyList<string> InitializableModuleNames => HeadModuleNames;

    /// <summary>
    /// Modules whose matrices are always loaded as float32 (trainable) even from a bfloat16/float16 checkpoint: the
    /// task heads that fine-tuning trains. A language-model head is pretrained and stays in the storage dtype.
    /// </summary>
    internal virtual IReadOnlyList<string> Float32ModuleNames => HeadModuleNames;
}
