namespace Microsoft.ML.Peft;

/// <summary>
/// Catalog entry points of PEFT text classification with any method (the method is
/// <see cref="PeftTextClassificationTrainer.Options.PeftConfig"/>). LoRA also has its named shortcut,
/// <see cref="LoraTextClassificationCatalog"/>. Extension methods cannot reach the catalog's <see cref="MLContext"/>,
/// so pass the seed and a log callback through the options.
/// </summary>
public static class PeftTextClassificationCatalog
{
    /// <summary>Multiclass text classification (Key&lt;UInt32&gt; label) fine-tuned with the options' PEFT method.</summary>
    public static PeftTextClassificationTrainer PeftTextClassification(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        PeftTextClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new PeftTextClassificationTrainer(options, ClassificationKind.Multiclass);
    }

    /// <summary>Binary text classification (Boolean label) fine-tuned with the options' PEFT method.</summary>
    public static PeftTextClassificationTrainer PeftTextClassification(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        PeftTextClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new PeftTextClassificationTrainer(options, ClassificationKind.Binary);
    }
}
