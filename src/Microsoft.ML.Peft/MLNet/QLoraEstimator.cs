using Microsoft.ML.Peft.QLora;

namespace Microsoft.ML.Peft;

/// <summary>
/// QLoRA text classification as an ML.NET estimator: the pretrained model's linear layers (all but the classification
/// head) are quantized to 4 bits (<see cref="QuantizedModel.QuantizeLinearLayers"/>), LoRA adapters are attached to
/// them and trained through the frozen 4-bit weights. Create it with
/// <c>mlContext.MulticlassClassification.Trainers.QLora(options)</c> or the binary catalog's <c>QLora</c>.
/// </summary>
/// <remarks>
/// Everything else is <see cref="LoraTextClassificationTrainer"/>'s: the same input checks, output columns (Score,
/// PredictedLabel, Probability for binary), training loop, determinism and <see cref="LoraTextClassificationTransformer"/>.
/// <see cref="PeftModelPersistence"/> saves the adapter in PEFT format plus the base identity (path, SHA-256 of its
/// weights) and the quantization settings; loading re-quantizes the verified base, which is deterministic, so
/// predictions are bit-identical.
/// </remarks>
public sealed partial class QLoraEstimator : IEstimator<LoraTextClassificationTransformer>
{
    private readonly Options options;
    private readonly LoraTextClassificationTrainer inner;

    internal QLoraEstimator(Options options, ClassificationKind kind)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        Quantization = new QuantizationOptions
        {
            Type = options.QuantizationType,
            BlockSize = options.QuantizationBlockSize,
            DoubleQuant = options.DoubleQuantization,
        };
        inner = new LoraTextClassificationTrainer(ToLoraOptions(options), kind, new PeftTextClassifierFactory(Quantization));
    }

    /// <summary>The quantization applied to the base model's linear layers.</summary>
    public QuantizationOptions Quantization { get; }

    /// <summary>The output shape (as <see cref="LoraTextClassificationTrainer.GetOutputSchema"/>).</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema) => inner.GetOutputSchema(inputSchema);

    /// <summary>Quantizes the base, attaches LoRA, trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    /// <exception cref="NotSupportedException">Gradient checkpointing of an encoder base model.</exception>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or has the wrong type, or the block size is invalid.</exception>
    public LoraTextClassificationTransformer Fit(IDataView input)
    {
        if (options.QuantizationBlockSize is < 32 or > 4096 || (options.QuantizationBlockSize & (options.QuantizationBlockSize - 1)) != 0)
            throw new ArgumentOutOfRangeException(nameof(input), options.QuantizationBlockSize, "QuantizationBlockSize must be a power of two from 32 to 4096");
        return inner.Fit(input);
    }

    private static LoraTextClassificationTrainer.Options ToLoraOptions(Options o) => new()
    {
        LabelColumnName = o.LabelColumnName,
        ScoreColumnName = o.ScoreColumnName,
        PredictionColumnName = o.PredictionColumnName,
        ProbabilityColumnName = o.ProbabilityColumnName,
        Sentence1ColumnName = o.Sentence1ColumnName,
        Sentence2ColumnName = o.Sentence2ColumnName,
        BaseModel = o.BaseModel,
        LoraRank = o.LoraRank,
        LoraAlpha = o.LoraAlpha,
        LoraDropout = o.LoraDropout,
        TargetModules = o.TargetModules,
        MaxEpochs = o.MaxEpochs,
        BatchSize = o.BatchSize,
        GradientAccumulationSteps = o.GradientAccumulationSteps,
        LearningRate = o.LearningRate,
        WarmupRatio = o.WarmupRatio,
        WeightDecay = o.WeightDecay,
        MaxGradientNorm = o.MaxGradientNorm,
        MaxSequenceLength = o.MaxSequenceLength,
        ValidationSet = o.ValidationSet,
        Seed = o.Seed,
        ScoringBatchSize = o.ScoringBatchSize,
        Log = o.Log,
        OptimizerState = o.OptimizerState,
        GradientCheckpointing = o.GradientCheckpointing,
        CheckpointKeepsProjectionOutputs = o.CheckpointKeepsProjectionOutputs,
    };
}
