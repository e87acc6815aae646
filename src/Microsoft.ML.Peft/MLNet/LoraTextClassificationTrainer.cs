using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// Fine-tunes a pretrained transformer (BERT/RoBERTa/DistilBERT encoders or Llama/GPT-2/GPT-NeoX decoders) for text
/// classification with LoRA, as an ML.NET estimator: the named shortcut of <see cref="PeftTextClassificationTrainer"/>
/// for LoRA (same training and scoring code). Create it through
/// <c>mlContext.MulticlassClassification.Trainers.LoraTextClassification(...)</c> or
/// <c>mlContext.BinaryClassification.Trainers.LoraTextClassification(...)</c>.
/// </summary>
/// <remarks>
/// <para>Input: a Text column <see cref="TextClassificationTrainerOptions.Sentence1ColumnName"/> (and optionally
/// <see cref="TextClassificationTrainerOptions.Sentence2ColumnName"/>); a label that is Key&lt;UInt32&gt; for multiclass
/// (rows with key 0, i.e. missing, are skipped) or Boolean for binary. Null texts are treated as empty strings; texts
/// longer than <see cref="TextClassificationTrainerOptions.MaxSequenceLength"/> tokens are truncated and counted in the log.</para>
/// <para>Output (multiclass): <c>Score</c> Vector&lt;Single&gt;[classes] of softmax probabilities (SlotNames from the
/// label's KeyValues) and <c>PredictedLabel</c> Key&lt;UInt32&gt; carrying the label's KeyValues. Output (binary):
/// <c>Score</c> = logit₁ − logit₀ (positive ⇔ class true), <c>Probability</c> = σ(Score), <c>PredictedLabel</c>
/// Boolean.</para>
/// <para>Schema problems are reported by <see cref="GetOutputSchema"/> and by <see cref="Fit"/> before the model is
/// loaded. Training is deterministic for a given <see cref="TextClassificationTrainerOptions.Seed"/>, and resumable with
/// <see cref="TextClassificationTrainerOptions.CheckpointFolder"/>. ML.NET's <c>Model.Save</c> cannot store third-party
/// transformers; use <see cref="PeftModelPersistence"/>.</para>
/// </remarks>
public sealed partial class LoraTextClassificationTrainer : IEstimator<LoraTextClassificationTransformer>
{
    private readonly TextClassifierTraining training;

    internal LoraTextClassificationTrainer(Options options, ClassificationKind kind, ITextClassifierFactory? factory = null) =>
        training = new TextClassifierTraining(options, kind, factory);

    internal ClassificationKind Kind => training.Kind;

    internal ITextClassifierFactory Factory => training.Factory;

    /// <summary>
    /// The output shape: the input columns plus Score and PredictedLabel (and Probability for binary). Checks the label
    /// and text columns; throws <see cref="ArgumentOutOfRangeException"/> naming a missing or mistyped column.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => training.GetOutputSchema(inputSchema);

    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type.</exception>
    /// <exception cref="ArgumentException">An option is invalid, the LoRA targets match no module, or the data has no labeled rows.</exception>
    /// <exception cref="TrainingDivergedException">The loss or gradient became NaN or infinite.</exception>
    public LoraTextClassificationTransformer Fit(IDataView input) => new(training.Fit(input));
}

/// <summary>Training and validation figures of one epoch.</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="TrainLoss">Mean training cross-entropy (nats).</param>
/// <param name="ValidationLoss">Mean validation cross-entropy (nats), if a validation set was given.</param>
/// <param name="ValidationAccuracy">Validation accuracy, if a validation set was given.</param>
public sealed record EpochSummary(int Epoch, double TrainLoss, double? ValidationLoss, double? ValidationAccuracy);
