using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft;

/// <summary>
/// The one implementation behind every PEFT text-classification trainer (<see cref="PeftTextClassificationTrainer"/>,
/// <see cref="LoraTextClassificationTrainer"/>): schema checks, reading and tokenizing rows, building the model with
/// the options' method, and the training loop. The public trainers only choose the options type and the transformer
/// type they return.
/// </summary>
internal sealed class TextClassifierTraining
{
    private readonly TextClassificationTrainerOptions options;
    private readonly TextClassificationColumns columns;

    /// <param name="options">The trainer's options.</param>
    /// <param name="kind">Binary or multiclass.</param>
    /// <param name="factory">Builds the classifier (tests substitute their own).</param>
    /// <param name="ensemble">For an ensemble trainer: adds its members around the training loop; null otherwise.</param>
    public TextClassifierTraining(TextClassificationTrainerOptions options, ClassificationKind kind, ITextClassifierFactory? factory, EnsembleTraining? ensemble = null)
    {
        Ensemble = ensemble;
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        columns = TextClassificationColumns.From(options, kind);
        Factory = factory ?? PeftTextClassifierFactory.Instance;
    }

    public ClassificationKind Kind => columns.Kind;

    public ITextClassifierFactory Factory { get; }

    public EnsembleTraining? Ensemble { get; }

    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        columns.Check(inputSchema);
        return OutputShapes.Build(inputSchema, columns);
    }

    public ClassifierParts Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var settings = Settings();
        if (string.IsNullOrWhiteSpace(options.BaseModel))
            throw new ArgumentException("Options.BaseModel must name the pretrained model (a local folder or a Hugging Face hub id)", nameof(input));
        if (options.ScoringBatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(input), options.ScoringBatchSize, "ScoringBatchSize must be positive");
        if (options.MaxSequenceLength <= 0) throw new ArgumentOutOfRangeException(nameof(input), options.MaxSequenceLength, "MaxSequenceLength must be positive");
        options.ValidateMethod();

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

        if (options.CheckpointKeepsProjectionOutputs && !options.GradientCheckpointing)
            throw new ArgumentException("Options.CheckpointKeepsProjectionOutputs needs Options.GradientCheckpointing = true: outputs are kept for the recompute of checkpointed blocks.", nameof(input));
        var log = options.Log;
        var train = LabeledTexts.Read(input, trainColumns, columns.Kind);
        if (train.Count == 0)
            throw new ArgumentException($"The training data has no rows with a label{(train.SkippedMissingLabel > 0 ? $" ({train.SkippedMissingLabel} rows have a missing label)" : "")}.", nameof(input));
        var validation = validationColumns is { } vc ? LabeledTexts.Read(options.ValidationSet!, vc, columns.Kind) : null;
        if (validation is { Count: 0 }) throw new ArgumentException("The validation set has no rows with a label.", nameof(input));
        if (train.SkippedMissingLabel > 0) log?.Invoke($"skipped {train.SkippedMissingLabel} training rows with a missing label");

        var backend = Factory.Create(options, numLabels);
        if (options.GradientCheckpointing) EnableCheckpointing(backend.Module);
        var encoder = new TextEncoder(backend.Tokenizer, options.MaxSequenceLength, backend.UsesTokenTypeIds, backend.PaddingId);
        var trainExamples = Encode(encoder, train, "training");
        var validationExamples = validation is null ? null : Encode(encoder, validation, "validation");

        var peft = (backend as PeftTextClassifier)?.Peft;
        var particles = Ensemble is null ? null
            : Ensemble.Prepare(peft ?? throw new InvalidOperationException("an ensemble needs a classifier with a PEFT adapter"), trainExamples.Count);
        var progress = Ensemble is null ? options.Progress : Ensemble.WrapProgress(options.Progress);
        var state = new TrainingLoop(backend, settings, backend.PaddingId, progress, log, peft, particles).Run(trainExamples, validationExamples);
        Ensemble?.Finish();
        backend.Module.Eval();
        // Soft prompts: the trained encoder (MLP, LSTM, prefix projection) is replaced by its table, as PEFT saves it.
        PromptTuning.PromptEncoderLayer.UseLookupTables(backend.Module);
        var history = state.History.Select(h => new EpochSummary(h.Epoch, h.TrainLoss, h.ValidationLoss, h.ValidationAccuracy)).ToArray();
        var labelAnnotations = columns.Kind == ClassificationKind.Multiclass ? KeyValuesAnnotation.From(trainColumns.Label!.Value) : null;
        return new ClassifierParts(backend, columns, numLabels, labelAnnotations, encoder, options.ScoringBatchSize, history);
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

    /// <summary>Turns on gradient checkpointing in the decoder backbone(s) of <paramref name="module"/>.</summary>
    private void EnableCheckpointing(Module module)
    {
        var decoders = module.NamedModules().Select(m => m.Module).OfType<DecoderModel>().ToList();
        if (decoders.Count == 0)
        {
            throw new NotSupportedException(
                $"Options.GradientCheckpointing: the base model '{options.BaseModel}' ({module.GetType().Name}) has no decoder layer loop to checkpoint; checkpointing is available for Llama-family, GPT-2 and GPT-NeoX models. Set it to false.");
        }
        foreach (var decoder in decoders)
        {
            decoder.GradientCheckpointing = true;
            decoder.CheckpointKeepsProjectionOutputs = options.CheckpointKeepsProjectionOutputs;
        }
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
            LoraPlusLearningRateRatio = options.LoraPlusLearningRateRatio,
            OptimizerState = options.OptimizerState,
            GaLore = options.GaLore,
        };
        settings.Validate();
        return settings;
    }
}

/// <summary>What a fitted or loaded classifier transformer is made of.</summary>
internal sealed record ClassifierParts(ITextClassifierBackend Backend, TextClassificationColumns Columns, int NumLabels,
    KeyValuesAnnotation? LabelKeyValues, TextEncoder Encoder, int ScoringBatchSize, IReadOnlyList<EpochSummary> History);
