namespace Microsoft.ML.Peft;

/// <summary>
/// Catalog entry points of QLoRA: text classification (<see cref="QLoraEstimator"/>) and instruction tuning of
/// decoders (<see cref="CausalLmFineTuningEstimator"/>, QLoRA by default, plain LoRA with
/// <c>Quantization = null</c>). Extension methods cannot reach the catalog's MLContext, so seed and log come from the
/// options.
/// </summary>
public static class QLoraCatalog
{
    /// <summary>Multiclass QLoRA text classification (Key&lt;UInt32&gt; label).</summary>
    public static QLoraEstimator QLora(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog, QLoraEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new QLoraEstimator(options, ClassificationKind.Multiclass);
    }

    /// <summary>Binary QLoRA text classification (Boolean label).</summary>
    public static QLoraEstimator QLora(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog, QLoraEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new QLoraEstimator(options, ClassificationKind.Binary);
    }

    /// <summary>Instruction tuning of a decoder; the fitted transformer adds a generated-response column.</summary>
    public static CausalLmFineTuningEstimator CausalLmFineTuning(this TransformsCatalog catalog, CausalLmFineTuningEstimator.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new CausalLmFineTuningEstimator(options);
    }
}
