using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft;

/// <summary>
/// Fine-tunes a pretrained transformer (BERT/RoBERTa/DistilBERT encoders or Llama/GPT-2/GPT-NeoX decoders) for text
/// classification with LoRA, as an ML.NET estimator. Create it through
/// <c>mlContext.MulticlassClassification.Trainers.LoraTextClassification(...)</c> or
/// <c>mlContext.BinaryClassification.Trainers.LoraTextClassification(...)</c>.
/// </summary>
/// <remarks>
/// <para>Input: a Text column <see cref="Options.Sentence1ColumnName"/> (and optionally
/// <see cref="Options.Sentence2ColumnName"/>); a label that is Key&lt;UInt32&gt; for multiclass (rows with key 0, i.e.
/// missing, are skipped) or Boolean for binary. Null texts are treated as empty strings; texts longer than
/// <see cref="Options.MaxSequenceLength"/> tokens are truncated and counted in the log.</para>
/// <para>Output (multiclass): <c>Score</c> Vector&lt;Single&gt;[classes] of softmax probabilities (SlotNames from the
/// label's KeyValues) and <c>PredictedLabel</c> Key&lt;UInt32&gt; carrying the label's KeyValues. Output (binary):
/// <c>Score</c> = logit₁ − logit₀ (positive ⇔ class true), <c>Probability</c> = σ(Score), <c>PredictedLabel</c>
/// Boolean.</para>
/// <para>Schema problems are reported by <see cref="GetOutputSchema"/> and by <see cref="Fit"/> before the model is
/// loaded. Training is deterministic for a given <see cref="Options.Seed"/>, and resumable with
/// <see cref="Options.CheckpointFolder"/>. ML.NET's <c>Model.Save</c> cannot store third-party transformers; use
/// <see cref="PeftModelPersistence"/>.</para>
/// </remarks>
public sealed partial class LoraTextClassificationTrainer : IEstimator<LoraTextClassificationTransformer>
{
    private readonly Options options;
    private readonly TextClassificationColumns columns;

    internal LoraTextClassificationTrainer(Options options, ClassificationKind kind, ITextClassifierFactory? factory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        columns = TextClassificationColumns.From(options, kind);
        Factory = factory ?? PeftTextClassifierFactory.Instance;
    }

    internal ClassificationKind Kind => columns.Kind;

    internal ITextClassifierFactory Factory { get; }

    /// <summary>
    /// The output shape: the input columns plus Score and PredictedLabel (and Probability for binary). Checks the label
    /// and text columns; throws <see cref="ArgumentOutOfRangeException"/> naming a missing or mistyped column.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        columns.Check(inputSchema);
        return OutputShapes.Build(inputSchema, columns);
    }

    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type.</exception>
    /// <exception cref="ArgumentException">An option is invalid, or the data has no labeled rows.</exception>
    /// <exception cref="TrainingDivergedException">The loss or gradient became NaN or infinite.</exception>
    public LoraTextClassificationTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var settings = Settings();
        if (string.IsNullOrWhiteSpace(options.BaseModel))
            throw new ArgumentException("Options.BaseModel must name the pretrained model (a local folder or a Hugging Face hub id)", nameof(input));
        if (options.ScoringBatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(input), options.ScoringBatchSize, "ScoringBatchSize must be positive");
        if (options.MaxSequenceLength <= 0) throw new ArgumentOutOfRangeException(nameof(input), options.MaxSequenceLength, "MaxSequenceLength must be positive");

        var trainColumns = columns.Bind(input.Schema, "the training data", needLabel: true);
        int numLabels = columns.Kind == ClassificationKind.Binary ? 2 : checked((int)((KeyDataViewType)trainColumns.Label!.Value.Type).Count);
        BoundColumns? validationColumns = null;
        if (options.ValidationSet is { } validationSet)
        {
            validationColumns = columns.Bind(validationSet.Schema, "the validation set", needLabel: true);
            if (columns.Kind == ClassificationKind.Multiclass && validationColumns.Value.Label!.Value.Type is KeyDataViewType { Count: var count } && (int)count != numLabels)
            {
                throw new ArgumentOutOfRangeException(nameof(input),
                    $"The label column '{columns.Label}' of the validation set has {count} classes but the training data's has {numLabels}; map both with the same MapValueToKey transformer.");
            }
        }
        if (settings.EarlyStoppingPatience > 0 && options.ValidationSet is null)
            throw new ArgumentException("EarlyStoppingPatience needs a ValidationSet", nameof(input));

        var log = options.Log;
        var train = LabeledTexts.Read(input, trainColumns, columns.Kind);
        if (train.Count == 0)
            throw new ArgumentException($"The training data has no rows with a label{(train.SkippedMissingLabel > 0 ? $" ({train.SkippedMissingLabel} rows have a missing label)" : "")}.", nameof(input));
        var validation = validationColumns is { } vc ? LabeledTexts.Read(options.ValidationSet!, vc, columns.Kind) : null;
        if (validation is { Count: 0 }) throw new ArgumentException("The validation set has no rows with a label.", nameof(input));
        if (train.SkippedMissingLabel > 0) log?.Invoke($"skipped {train.SkippedMissingLabel} training rows with a missing label");

        var backend = Factory.Create(options, numLabels);
        var encoder = new TextEncoder(backend.Tokenizer, options.MaxSequenceLength, backend.UsesTokenTypeIds, backend.PaddingId);
        var trainExamples = Encode(encoder, train, "training");
        var validationExamples = validation is null ? null : Encode(encoder, validation, "validation");

        var state = new TrainingLoop(backend, settings, backend.PaddingId, options.Progress, log).Run(trainExamples, validationExamples);
        backend.Module.Eval();
        var history = state.History.Select(h => new EpochSummary(h.Epoch, h.TrainLoss, h.ValidationLoss, h.ValidationAccuracy)).ToArray();
        var labelAnnotations = columns.Kind == ClassificationKind.Multiclass ? KeyValuesAnnotation.From(trainColumns.Label!.Value) : null;
        return new LoraTextClassificationTransformer(backend, columns, numLabels, labelAnnotations, encoder, options.ScoringBatchSize, history);
    }

    private List<ClassificationExample> Encode(TextEncoder encoder, LabeledTexts texts, string what)
    {
        var examples = new List<ClassificationExample>(texts.Count);
        int truncated = 0;
        long tokens = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            var (ids, types) = encoder.Encode(texts.Sentence1[i], texts.Sentence2?[i], out bool cut);
            if (cut) truncated++;
            tokens += ids.Length;
            examples.Add(new ClassificationExample(ids, types, texts.Labels[i]));
        }
        options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"{what}: {texts.Count} rows, {tokens / (double)texts.Count:F1} tokens per row, {truncated} truncated to {encoder.MaxLength} tokens"));
        return examples;
    }

    private TrainingSettings Settings()
    {
        var settings = new TrainingSettings
        {
            Epochs = options.MaxEpochs,
            BatchSize = options.BatchSize,
            LearningRate = options.LearningRate,
            WarmupRatio = options.WarmupRatio,
            WeightDecay = options.WeightDecay,
            GradientAccumulationSteps = options.GradientAccumulationSteps,
            MaxGradNorm = options.MaxGradientNorm,
            Seed = unchecked((ulong)(long)options.Seed),
            EarlyStoppingPatience = options.EarlyStoppingPatience,
            BatchOrder = options.BatchOrder,
            CheckpointFolder = options.CheckpointFolder,
            CheckpointEverySteps = options.CheckpointEverySteps,
        };
        settings.Validate();
        return settings;
    }
}

/// <summary>Training and validation figures of one epoch.</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="TrainLoss">Mean training cross-entropy (nats).</param>
/// <param name="ValidationLoss">Mean validation cross-entropy (nats), if a validation set was given.</param>
/// <param name="ValidationAccuracy">Validation accuracy, if a validation set was given.</param>
public sealed record EpochSummary(int Epoch, double TrainLoss, double? ValidationLoss, double? ValidationAccuracy);
