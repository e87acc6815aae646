using Microsoft.ML.Data;
using Microsoft.ML.Peft.Ensembles;

namespace Microsoft.ML.Peft;

/// <summary>
/// An ensemble of LoRA text classifiers over one base model (SVGD particles, deep-ensemble members, checkpoints or
/// MC-dropout passes) as an ML.NET transformer: Score / Probability / PredictedLabel hold the ensemble's mean prediction
/// (same names, types and annotations as a single classifier's, so <c>Evaluate</c> reads them), plus per-row
/// PredictiveEntropy H[p̄] and MutualInformation H[p̄] − mean H[p_m] (nats; the members' disagreement, the epistemic
/// part). Created by <see cref="SvgdLoraTextClassificationTrainer.Fit"/>.
/// </summary>
/// <remarks>
/// Rows are scored in batches, every member in turn (n forward passes per batch). It maps rows one to one, so
/// <c>CreatePredictionEngine</c> works. Save pipelines containing it with <see cref="PeftModelPersistence"/>: every
/// member adapter is stored in PEFT's layout (member 0 as "default", the others in sub-folders) and reloads bit-identical.
/// MC dropout draws its masks from the adapter's random stream restarted at <see cref="SvgdLoraTextClassificationTrainer.Options.MonteCarloSeed"/>
/// for every scoring batch, so its values depend on how rows are batched (a prediction engine's single row differs
/// from the same row scored inside a batch), but not on what was scored before.
/// </remarks>
public sealed class EnsembleTextClassificationTransformer : ITransformer
{
    private readonly EnsembleColumns columns;

    internal EnsembleTextClassificationTransformer(PeftTextClassificationTransformer classifier, EnsembleSettings settings, IReadOnlyList<EpochSummary>? history = null)
    {
        Classifier = classifier;
        TrainingHistory = history ?? classifier.TrainingHistory;
        Settings = settings;
        columns = new EnsembleColumns(classifier.Columns, classifier.NumberOfClasses, classifier.LabelKeyValues, settings.EntropyColumn, settings.MutualInformationColumn);
        Scorer = new EnsembleScorer(classifier.Scorer, settings.Members, settings.Method == EnsembleMethod.MonteCarloDropout ? settings.DropoutPasses : 0, settings.DropoutSeed)
        {
            Binary = classifier.Columns.Kind == ClassificationKind.Binary,
        };
    }

    /// <summary>Member 0 on its own (the adapter "default"): for one SVGD particle, exactly the LoRA trainer's model.</summary>
    public PeftTextClassificationTransformer Classifier { get; }

    /// <summary>How the members were obtained.</summary>
    public EnsembleMethod Method => Settings.Method;

    /// <summary>Member predictions averaged per row (adapters, or MC-dropout passes).</summary>
    public int MemberCount => Scorer.MemberCount;

    /// <summary>The members' adapter names ("default", "member_1", …; one name for MC dropout).</summary>
    public IReadOnlyList<string> MemberAdapters => Settings.Members;

    /// <summary>Number of classes (2 for binary).</summary>
    public int NumberOfClasses => Classifier.NumberOfClasses;

    /// <summary>Per-epoch training loss and validation figures (validation of the ensemble's mean; empty for a loaded model).</summary>
    public IReadOnlyList<EpochSummary> TrainingHistory { get; }

    /// <summary>Always true: rows map one to one (required by the prediction engine).</summary>
    public bool IsRowToRowMapper => true;

    internal EnsembleSettings Settings { get; }

    internal EnsembleScorer Scorer { get; }

    /// <summary>The input schema plus the ensemble columns; checks the text columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        Classifier.Columns.Bind(inputSchema, "the input schema", needLabel: false);
        return columns.OutputSchema(inputSchema);
    }

    /// <summary>Appends the ensemble columns (lazily; rows are predicted in batches when a cursor reads them).</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var texts = Classifier.Columns.Bind(input.Schema, "the data to transform", needLabel: false);
        return new BatchPredictionDataView<EnsembleRowPrediction>(input, Scorer, columns, texts);
    }

    /// <summary>A mapper predicting one row at a time (used by the prediction engine).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new AppendedPredictionMapper<EnsembleRowPrediction>(inputSchema, Classifier.Columns.Bind(inputSchema, "the input schema", needLabel: false), Scorer, columns);
    }

    /// <summary>
    /// Writes every member adapter in Hugging Face PEFT's layout (member 0 in <paramref name="folder"/>, the others in
    /// sub-folders named after them), classifier.json and ensemble.json.
    /// </summary>
    public void SaveEnsemble(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        EnsembleFiles.Save(folder, this);
    }

    /// <summary>Not supported by ML.NET for third-party transformers; use <see cref="PeftModelPersistence.Save"/>.</summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException(
            "ML.NET's Model.Save cannot store an EnsembleTextClassificationTransformer (third-party transformers cannot write model files). " +
            "Use Microsoft.ML.Peft.PeftModelPersistence.Save(mlContext, model, inputSchema, path) instead.");
}

/// <summary>The ensemble's own settings that outlive Fit (saved in ensemble.json).</summary>
internal sealed record EnsembleSettings(EnsembleMethod Method, IReadOnlyList<string> Members, int DropoutPasses, long DropoutSeed,
    string EntropyColumn, string MutualInformationColumn);
