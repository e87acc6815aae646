using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Data;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft;

/// <summary>
/// Laplace-LoRA as an ML.NET estimator: fits a Gaussian posterior over a trained LoRA text classifier's adapter (and
/// head) weights on the training data and returns a <see cref="LaplaceCalibratorTransformer"/> whose Score /
/// Probability / PredictedLabel hold the Bayesian (linearised, probit or Monte-Carlo) predictive probabilities, with
/// per-row predictive entropy and logit variance. Place it right after the classifier:
/// <c>MapValueToKey → LoraTextClassification → LaplaceCalibrator → MapKeyToValue</c>.
/// </summary>
/// <remarks>
/// <para>In a chain, <see cref="Fit"/> receives the classifier's output view and finds the classifier there; outside a
/// chain pass the classifier to the constructor. The input must carry the classifier's text columns and the label
/// (<see cref="Options.LabelColumnName"/>): Key&lt;UInt32&gt; with the classifier's classes, or Boolean for binary.</para>
/// <para>Errors, all before the curvature pass: a classifier without LoRA parameters, a label column that is missing
/// or does not match the trained classes, a prior precision ≤ 0; during it, a non-finite curvature names the layer.</para>
/// </remarks>
public sealed partial class LaplaceCalibrator : IEstimator<LaplaceCalibratorTransformer>
{
    private readonly Options options;
    private readonly ClassificationKind? kind;
    private readonly LoraTextClassificationTransformer? classifier;

    /// <summary>A calibrator for <paramref name="classifier"/> (use outside an estimator chain).</summary>
    public LaplaceCalibrator(LoraTextClassificationTransformer classifier, Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(classifier);
        this.classifier = classifier;
        this.options = options ?? new Options();
        kind = classifier.Columns.Kind;
    }

    internal LaplaceCalibrator(Options? options, ClassificationKind kind)
    {
        this.options = options ?? new Options();
        this.kind = kind;
    }

    /// <summary>The input shape plus the entropy and logit-variance columns; checks the label column's type.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        options.Validate();
        var label = inputSchema.LastOrDefault(c => c.Name == options.LabelColumnName);
        if (label.Name is null) throw new ArgumentOutOfRangeException(nameof(inputSchema), $"LaplaceCalibrator: could not find the label column '{options.LabelColumnName}' in the input schema.");
        bool binary = kind == ClassificationKind.Binary;
        bool ok = label.Kind == SchemaShape.Column.VectorKind.Scalar && (binary ? !label.IsKey && label.ItemType is BooleanDataViewType : label.IsKey);
        if (!ok) throw new ArgumentOutOfRangeException(nameof(inputSchema), $"LaplaceCalibrator: the label column '{options.LabelColumnName}' must be {(binary ? "Boolean" : "Key<UInt32>")}.");
        var shapes = new MLContext();
        var definition = SchemaDefinition.Create(binary ? typeof(BinaryUncertainty) : typeof(MulticlassUncertainty));
        definition[nameof(BinaryUncertainty.PredictiveEntropy)].ColumnName = options.PredictiveEntropyColumnName;
        if (binary) definition[nameof(BinaryUncertainty.LogitVariance)].ColumnName = options.LogitVarianceColumnName;
        var shape = binary
            ? shapes.Transforms.CustomMapping<OutputShapes.NoInput, BinaryUncertainty>((_, _) => { }, contractName: null, outputSchemaDefinition: definition).GetOutputSchema(inputSchema)
            : shapes.Transforms.CustomMapping<OutputShapes.NoInput, MulticlassUncertainty>((_, _) => { }, contractName: null, outputSchemaDefinition: definition).GetOutputSchema(inputSchema);
        // Multiclass: one variance per class, a known-size Vector<Single> like the label's one-hot.
        return binary ? shape : shapes.Transforms.Conversion.MapKeyToVector(options.LogitVarianceColumnName, options.LabelColumnName).GetOutputSchema(shape);
    }

    /// <summary>Gathers the curvature over <paramref name="input"/>, tunes the prior precision and returns the transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Prior precision ≤ 0, label column missing / mistyped / not the trained classes.</exception>
    /// <exception cref="ArgumentException">No LoRA classifier to calibrate, or no labeled rows.</exception>
    /// <exception cref="InvalidOperationException">The classifier has no LoRA parameters, or the curvature of a layer (named) is not finite.</exception>
    public LaplaceCalibratorTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        options.Validate();
        var lora = classifier ?? (input as BatchPredictionDataView<float[]>)?.Source as LoraTextClassificationTransformer
            ?? throw new ArgumentException("LaplaceCalibrator: Fit needs the output of a LoRA text classifier (place the calibrator right after " +
                "LoraTextClassification in the chain) or a classifier given to the constructor.", nameof(input));
        if (kind is { } k && k != lora.Columns.Kind)
            throw new ArgumentException($"LaplaceCalibrator: a {Describe(k)} calibrator cannot calibrate a {Describe(lora.Columns.Kind)} classifier", nameof(input));
        var backend = PeftBackend(lora);
        var columns = lora.Columns with { Label = options.LabelColumnName };
        LabeledTexts train;
        using (LaplacePhaseTimer.Measure(LaplacePhase.ReadData)) train = ReadLabeled(input, columns, lora, "the calibration data");
        var validation = options.PriorPrecisionTuning == LaplacePriorPrecisionTuning.Validation ? ReadLabeled(options.ValidationSet!, columns, lora, "the validation set") : null;

        var laplaceOptions = new LaplaceLoraOptions
        {
            Curvature = options.Curvature, Fisher = options.Fisher, Seed = options.Seed, Temperature = options.Temperature,
            PriorPrecision = options.PriorPrecision, HeadModules = options.IncludeHead ? HeadModules(backend) : [],
        };
        var encoder = lora.Scorer.Encoder;
        var clock = Stopwatch.StartNew();
        LaplaceLora posterior;
        lock (lora.Scorer.Gate)
        {
            backend.Module.Eval();
            posterior = LaplaceLora.Fit(backend.Peft, LogitsFunction(backend), Batches(encoder, train, backend.PaddingId), laplaceOptions);
            try
            {
                double curvatureSeconds = clock.Elapsed.TotalSeconds;
                using (LaplacePhaseTimer.Measure(LaplacePhase.PriorTuning))
                {
                    switch (options.PriorPrecisionTuning)
                    {
                        case LaplacePriorPrecisionTuning.Evidence:
                            posterior.OptimizePriorPrecision(new PriorPrecisionOptions { Structure = options.PriorPrecisionStructure, InitialPriorPrecision = options.PriorPrecision });
                            break;
                        case LaplacePriorPrecisionTuning.Validation:
                            posterior.TunePriorPrecisionByValidation(Batches(encoder, validation!, backend.PaddingId));
                            break;
                    }
                }
                options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
                    $"Laplace ({options.Curvature}, {options.Fisher} Fisher): {posterior.Blocks.Count} blocks, {posterior.Blocks.Sum(b => (long)b.ParameterCount)} parameters, " +
                    $"{train.Count} rows; curvature {curvatureSeconds:F2} s, prior precision {posterior.PriorPrecisions[0]:G4} ({options.PriorPrecisionTuning}), " +
                    $"log evidence {posterior.LogMarginalLikelihood():F3}, total {clock.Elapsed.TotalSeconds:F2} s"));
                posterior.DetachProbes();
            }
            catch
            {
                posterior.Dispose();
                throw;
            }
        }
        var settings = new LaplaceCalibratorSettings(options.Predictive, options.MonteCarloSamples, options.Seed, options.BatchSize,
            options.PredictiveEntropyColumnName, options.LogitVarianceColumnName, options.PriorPrecisionTuning);
        return new LaplaceCalibratorTransformer(lora, posterior, settings);
    }

    /// <summary>The classifier's PEFT backend, or a clear error when it has none (no LoRA parameters to put a posterior on).</summary>
    internal static PeftTextClassifier PeftBackend(LoraTextClassificationTransformer lora) =>
        lora.Scorer.Backend as PeftTextClassifier
        ?? throw new InvalidOperationException($"LaplaceCalibrator: the classifier's model ({lora.Scorer.Backend.GetType().Name}) has no PEFT adapter, so there are no LoRA parameters to put a posterior on");

    /// <summary>Token batches packed as <see cref="TokenBatchTensor"/> → the classifier's logits [B, C].</summary>
    internal static Func<Tensor, Tensor> LogitsFunction(PeftTextClassifier backend) =>
        packed => backend.Forward(TokenBatchTensor.Unpack(packed, backend.PaddingId, backend.UsesTokenTypeIds));

    /// <summary>The classification head's plain float32 Linear layers (trained as modules_to_save), which get blocks too.</summary>
    private static string[] HeadModules(PeftTextClassifier backend) =>
        backend.Model.ClassifierHeadNames.Where(name => backend.Peft.Model.NamedModules().Any(m => m.Name == name && m.Module is Linear { Weight.DType: DType.Float32 })).ToArray();

    /// <summary>
    /// Batches of rows in data order (sorted by token count when <see cref="LaplaceCalibratorPredictor.SortByLength"/>):
    /// the curvature and evidence are sums over examples and, with the padding mask, do not depend on the batching.
    /// </summary>
    private IEnumerable<LaplaceBatch> Batches(TextEncoder encoder, LabeledTexts texts, int paddingId)
    {
        int[][] ids;
        int[]?[]? types;
        int[] order;
        using (LaplacePhaseTimer.Measure(LaplacePhase.Encode))
        {
            (ids, types) = LaplaceCalibratorPredictor.Encode(encoder, texts.Sentence1, texts.Sentence2);
            order = LaplaceCalibratorPredictor.ByLength(ids);
        }
        for (int start = 0; start < ids.Length; start += options.BatchSize)
        {
            var rows = order.AsSpan(start, Math.Min(options.BatchSize, ids.Length - start)).ToArray();
            TokenBatch batch;
            using (LaplacePhaseTimer.Measure(LaplacePhase.Encode))
                batch = TokenBatch.Collate(rows.Select(i => ids[i]).ToArray(), types is null ? null : rows.Select(i => types[i]).ToArray(), paddingId);
            yield return new LaplaceBatch(TokenBatchTensor.Pack(batch), rows.Select(i => texts.Labels[i]).ToArray()) { PositionMask = batch.AttentionMask };
        }
    }

    /// <summary>Reads texts and labels, checking that the label is the classifier's: same class count and key values.</summary>
    private static LabeledTexts ReadLabeled(IDataView data, TextClassificationColumns columns, LoraTextClassificationTransformer lora, string what)
    {
        var bound = columns.Bind(data.Schema, what, needLabel: true);
        if (columns.Kind == ClassificationKind.Multiclass)
        {
            var label = bound.Label!.Value;
            int count = checked((int)((KeyDataViewType)label.Type).Count);
            if (count != lora.NumberOfClasses)
                throw new ArgumentOutOfRangeException(nameof(data), $"LaplaceCalibrator: the label column '{label.Name}' of {what} has {count} classes but the classifier was trained on {lora.NumberOfClasses}; map the label with the pipeline's own MapValueToKey transformer.");
            if (lora.LabelKeyValues is { } trained && KeyValuesAnnotation.From(label) is { } given && !trained.Values.SequenceEqual(given.Values))
                throw new ArgumentOutOfRangeException(nameof(data), $"LaplaceCalibrator: the label column '{label.Name}' of {what} has classes [{string.Join(", ", given.Values)}] but the classifier was trained on [{string.Join(", ", trained.Values)}].");
        }
        var texts = LabeledTexts.Read(data, bound, columns.Kind);
        if (texts.Count == 0) throw new ArgumentException($"LaplaceCalibrator: {what} has no rows with a label", nameof(data));
        return texts;
    }

    private static string Describe(ClassificationKind k) => k == ClassificationKind.Binary ? "binary" : "multiclass";

    /// <summary>Output shape of the binary uncertainty columns.</summary>
    internal sealed class BinaryUncertainty
    {
        public float PredictiveEntropy { get; set; }

        public float LogitVariance { get; set; }
    }

    /// <summary>Output shape of the multiclass entropy column (the variance vector's shape comes from the label).</summary>
    internal sealed class MulticlassUncertainty
    {
        public float PredictiveEntropy { get; set; }
    }
}
