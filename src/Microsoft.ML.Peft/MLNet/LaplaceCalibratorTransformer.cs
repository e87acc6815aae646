using Microsoft.ML.Data;
using Microsoft.ML.Peft.Bayesian;

namespace Microsoft.ML.Peft;

/// <summary>
/// A LoRA text classifier's predictions under a Laplace posterior over its adapter (and head) weights (Laplace-LoRA):
/// Score / Probability / PredictedLabel hold the Bayesian predictive (same names and types as the classifier's, which
/// they hide), plus per-row predictive entropy and logit variance. Created by <see cref="LaplaceCalibrator.Fit"/>.
/// </summary>
/// <remarks>
/// The transformer shares the model of the <see cref="Classifier"/> it was fitted on (the stage before it in a
/// pipeline); calls into that model are serialised. Each row needs the logits' Jacobian with respect to the LoRA
/// weights (one forward and C backward passes per batch) and the posterior's K-FAC structure, never a d×d matrix.
/// Save whole pipelines with <see cref="PeftModelPersistence"/> (the posterior is stored next to the adapter) or the
/// posterior alone with <see cref="SavePosterior"/>.
/// </remarks>
public sealed class LaplaceCalibratorTransformer : ITransformer
{
    private readonly LaplaceCalibratorColumns columns;

    internal LaplaceCalibratorTransformer(LoraTextClassificationTransformer classifier, LaplaceLora posterior, LaplaceCalibratorSettings settings)
    {
        Classifier = classifier;
        Settings = settings;
        columns = new LaplaceCalibratorColumns(classifier.Columns, classifier.NumberOfClasses, classifier.LabelKeyValues, settings.PredictiveEntropyColumn, settings.LogitVarianceColumn);
        Predictor = new LaplaceCalibratorPredictor(posterior, classifier.Scorer, classifier.Columns.Kind == ClassificationKind.Binary, settings.Predictive, settings.MonteCarloSamples, settings.Seed, settings.BatchSize);
    }

    /// <summary>The LoRA classifier whose adapter carries the posterior.</summary>
    public LoraTextClassificationTransformer Classifier { get; }

    /// <summary>Curvature structure of the posterior.</summary>
    public CurvatureKind Curvature => Posterior.Options.Curvature;

    /// <summary>Fisher type the curvature was gathered with.</summary>
    public FisherKind Fisher => Posterior.Options.Fisher;

    /// <summary>How probabilities are formed from the Gaussian over the logits.</summary>
    public LaplacePredictiveKind Predictive => Settings.Predictive;

    /// <summary>Laplace log marginal likelihood (evidence) of the training data at the chosen prior precision(s).</summary>
    public double LogMarginalLikelihood => Posterior.LogMarginalLikelihood();

    /// <summary>The prior precision λ (the first block's when tuned per layer; see <see cref="PriorPrecisions"/>).</summary>
    public double PriorPrecision => Posterior.PriorPrecisions[0];

    /// <summary>The prior precision of every posterior block, in <see cref="BlockNames"/> order.</summary>
    public IReadOnlyList<double> PriorPrecisions => Posterior.PriorPrecisions;

    /// <summary>Names of the matrices under the posterior (e.g. "model.layers.0.self_attn.q_proj.lora_A.default", "score").</summary>
    public IReadOnlyList<string> BlockNames => Posterior.Blocks.Select(b => b.Name).ToArray();

    /// <summary>Number of LoRA (and head) parameters under the posterior.</summary>
    public long ParameterCount => Posterior.Blocks.Sum(b => (long)b.ParameterCount);

    /// <summary>Training examples the curvature was gathered over.</summary>
    public int DataCount => Posterior.DataCount;

    /// <summary>Always true: rows map one to one (required by the prediction engine).</summary>
    public bool IsRowToRowMapper => true;

    internal LaplaceCalibratorSettings Settings { get; }

    internal LaplaceCalibratorPredictor Predictor { get; }

    internal LaplaceLora Posterior => Predictor.Posterior;

    /// <summary>The input schema plus the Bayesian prediction columns; checks the text columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        Classifier.Columns.Bind(inputSchema, "the input schema", needLabel: false);
        return columns.OutputSchema(inputSchema);
    }

    /// <summary>Appends the prediction columns (lazily; rows are predicted in batches when a cursor reads them).</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var texts = Classifier.Columns.Bind(input.Schema, "the data to transform", needLabel: false);
        return new BatchPredictionDataView<LaplaceRowPrediction>(input, Predictor, columns, texts);
    }

    /// <summary>A mapper predicting one row at a time (used by the prediction engine).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new AppendedPredictionMapper<LaplaceRowPrediction>(inputSchema, Classifier.Columns.Bind(inputSchema, "the input schema", needLabel: false), Predictor, columns);
    }

    /// <summary>
    /// Writes the posterior (laplace_calibrator.json and laplace_posterior.safetensors, float64 factors) into
    /// <paramref name="folder"/>, each file atomically; the MAP weights are the classifier's adapter.
    /// </summary>
    public void SavePosterior(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        LaplaceCalibratorPosteriorFiles.Save(folder, this);
    }

    /// <summary>Not supported by ML.NET for third-party transformers; use <see cref="PeftModelPersistence.Save"/>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException(
            "ML.NET's Model.Save cannot store a LaplaceCalibratorTransformer (third-party transformers cannot write model files). " +
            "Use Microsoft.ML.Peft.PeftModelPersistence.Save(mlContext, model, inputSchema, path) instead.");
}

/// <summary>The calibrator's own settings that outlive Fit (saved with the posterior).</summary>
internal sealed record LaplaceCalibratorSettings(LaplacePredictiveKind Predictive, int MonteCarloSamples, int Seed, int BatchSize,
    string PredictiveEntropyColumn, string LogitVarianceColumn, LaplacePriorPrecisionTuning PriorPrecisionTuning);
