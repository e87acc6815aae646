namespace Microsoft.ML.Peft;

/// <summary>
/// Catalog entry points of LoRA text classification, shaped like ML.NET TorchSharp's <c>TextClassification</c>.
/// Extension methods cannot reach the catalog's <see cref="MLContext"/> (ML.NET keeps it internal), so its seed and
/// log are not used: pass <c>seed</c> here and a log callback through the options overload.
/// </summary>
public static class LoraTextClassificationCatalog
{
    /// <summary>Multiclass LoRA text classification with the most common settings (see <see cref="LoraTextClassificationTrainer.Options"/> for the rest).</summary>
    /// <param name="catalog">The multiclass trainers catalog.</param>
    /// <param name="baseModel">Pretrained model folder or Hugging Face hub id.</param>
    /// <param name="labelColumnName">Key&lt;UInt32&gt; label column.</param>
    /// <param name="scoreColumnName">Output column of class probabilities.</param>
    /// <param name="outputColumnName">Output column of the predicted key.</param>
    /// <param name="sentence1ColumnName">Text column.</param>
    /// <param name="sentence2ColumnName">Optional second text column (sentence pairs).</param>
    /// <param name="batchSize">Rows per step.</param>
    /// <param name="maxEpochs">Epochs.</param>
    /// <param name="validationSet">Optional data scored after each epoch.</param>
    /// <param name="seed">Seed of initialisation, dropout and batch order (null = 0).</param>
    public static LoraTextClassificationTrainer LoraTextClassification(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        string baseModel, string labelColumnName = "Label", string scoreColumnName = "Score", string outputColumnName = "PredictedLabel",
        string sentence1ColumnName = "Sentence1", string? sentence2ColumnName = default, int batchSize = 32, int maxEpochs = 10,
        IDataView? validationSet = null, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LoraTextClassificationTrainer(Simple(baseModel, labelColumnName, scoreColumnName, outputColumnName, "Probability",
            sentence1ColumnName, sentence2ColumnName, batchSize, maxEpochs, validationSet, seed), ClassificationKind.Multiclass);
    }

    /// <summary>Multiclass LoRA text classification with full options.</summary>
    public static LoraTextClassificationTrainer LoraTextClassification(this MulticlassClassificationCatalog.MulticlassClassificationTrainers catalog,
        LoraTextClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LoraTextClassificationTrainer(options, ClassificationKind.Multiclass);
    }

    /// <summary>Binary LoRA text classification (Boolean label) with the most common settings.</summary>
    /// <param name="catalog">The binary trainers catalog.</param>
    /// <param name="baseModel">Pretrained model folder or Hugging Face hub id.</param>
    /// <param name="labelColumnName">Boolean label column.</param>
    /// <param name="scoreColumnName">Output column of the raw margin logit₁ − logit₀.</param>
    /// <param name="probabilityColumnName">Output column of P(true) = σ(margin).</param>
    /// <param name="outputColumnName">Output column of the Boolean prediction (margin &gt; 0).</param>
    /// <param name="sentence1ColumnName">Text column.</param>
    /// <param name="sentence2ColumnName">Optional second text column (sentence pairs).</param>
    /// <param name="batchSize">Rows per step.</param>
    /// <param name="maxEpochs">Epochs.</param>
    /// <param name="validationSet">Optional data scored after each epoch.</param>
    /// <param name="seed">Seed of initialisation, dropout and batch order (null = 0).</param>
    public static LoraTextClassificationTrainer LoraTextClassification(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        string baseModel, string labelColumnName = "Label", string scoreColumnName = "Score", string probabilityColumnName = "Probability",
        string outputColumnName = "PredictedLabel", string sentence1ColumnName = "Sentence1", string? sentence2ColumnName = default,
        int batchSize = 32, int maxEpochs = 10, IDataView? validationSet = null, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LoraTextClassificationTrainer(Simple(baseModel, labelColumnName, scoreColumnName, outputColumnName, probabilityColumnName,
            sentence1ColumnName, sentence2ColumnName, batchSize, maxEpochs, validationSet, seed), ClassificationKind.Binary);
    }

    /// <summary>Binary LoRA text classification with full options.</summary>
    public static LoraTextClassificationTrainer LoraTextClassification(this BinaryClassificationCatalog.BinaryClassificationTrainers catalog,
        LoraTextClassificationTrainer.Options options)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LoraTextClassificationTrainer(options, ClassificationKind.Binary);
    }

    private static LoraTextClassificationTrainer.Options Simple(string baseModel, string label, string score, string output, string probability,
        string sentence1, string? sentence2, int batchSize, int maxEpochs, IDataView? validationSet, int? seed) => new()
    {
        BaseModel = baseModel,
        LabelColumnName = label,
        ScoreColumnName = score,
        PredictionColumnName = output,
        ProbabilityColumnName = probability,
        Sentence1ColumnName = sentence1,
        Sentence2ColumnName = sentence2,
        BatchSize = batchSize,
        MaxEpochs = maxEpochs,
        ValidationSet = validationSet,
        Seed = seed ?? 0,
    };
}
