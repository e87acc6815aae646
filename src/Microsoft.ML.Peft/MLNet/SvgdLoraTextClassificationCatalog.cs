namespace Microsoft.ML.Peft;

/// <summary>
/// Catalog entry points of <see cref="SvgdLoraTextClassificationTrainer"/>: SVGD-LoRA and the ensemble baselines
/// (deep ensembles, checkpoint ensembles, MC dropout; <see cref="SvgdLoraTextClassificationTrainer.Options.Method"/>).
/// </summary>
public static class SvgdLoraTextClassificationCatalog
{
    /// <summary>Multiclass (Key&lt;UInt32&gt; label) ensemble of LoRA text classifiers.</summary>
    public static SvgdLoraTextClassificationTrainer SvgdLoraTextClassification(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        SvgdLoraTextClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new SvgdLoraTextClassificationTrainer(options, ClassificationKind.Multiclass);
    }

    /// <summary>Binary (Boolean label) ensemble of LoRA text classifiers.</summary>
    public static SvgdLoraTextClassificationTrainer SvgdLoraTextClassification(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        SvgdLoraTextClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new SvgdLoraTextClassificationTrainer(options, ClassificationKind.Binary);
    }
}
