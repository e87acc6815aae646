namespace Microsoft.ML.Peft;

/// <summary>Which ML.NET task a LoRA text classifier serves; it fixes the label type and the output columns.</summary>
internal enum ClassificationKind
{
    /// <summary>Key&lt;UInt32&gt; label; Score = Vector&lt;Single&gt; of softmax probabilities, PredictedLabel = key.</summary>
    Multiclass,

    /// <summary>Boolean label; Score = margin logit₁ − logit₀, Probability = σ(margin), PredictedLabel = Boolean.</summary>
    Binary,
}
