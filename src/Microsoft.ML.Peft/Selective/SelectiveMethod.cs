namespace Microsoft.ML.Peft.Selective;

/// <summary>Which subset of a model's own parameters a <see cref="SelectiveConfig"/> trains.</summary>
public enum SelectiveMethod
{
    /// <summary>BitFit (Ben Zaken et al., 2022): every bias ("…bias"). peft_type "BITFIT".</summary>
    BitFit,

    /// <summary>LayerNorm tuning: the gain and bias of every LayerNorm/RMSNorm (or of target_modules). peft_type "LAYERNORM_TUNING".</summary>
    LayerNormTuning,

    /// <summary>Linear probing: nothing of the body, only modules_to_save (the head). peft_type "HEAD_ONLY".</summary>
    HeadOnly,

    /// <summary>Partial fine-tuning: every parameter of the last N numbered layers (or of layers_to_transform). peft_type "LAST_N_LAYERS".</summary>
    LastLayers,

    /// <summary>Full fine-tuning baseline: every float32 parameter. peft_type "FULL_FINETUNING".</summary>
    Full,
}
