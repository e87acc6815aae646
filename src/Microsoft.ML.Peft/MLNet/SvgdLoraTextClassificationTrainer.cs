using Microsoft.ML.Data;
using Microsoft.ML.Peft.Ensembles;

namespace Microsoft.ML.Peft;

/// <summary>
/// An ensemble of LoRA text classifiers as an ML.NET estimator: SVGD-LoRA (n LoRA particles trained jointly by Stein
/// variational gradient descent, an approximate posterior over the adapter), or the baselines of
/// <see cref="Options.Method"/> — a deep ensemble, a checkpoint ensemble, MC dropout. The transformer predicts with
/// the members' mean probabilities and adds per-row PredictiveEntropy and MutualInformation. Create it through
/// <c>mlContext.BinaryClassification.Trainers.SvgdLoraTextClassification(options)</c> or the multiclass catalog.
/// </summary>
/// <remarks>
/// <para>Training is the LoRA trainer's (same columns, checks, schedule, clipping, checkpoints; every member starts from
/// the same base and the same initial head), with these differences. SVGD and deep ensembles run each micro-batch once
/// per particle, clip each particle's gradient on its own, and (SVGD) replace it by G_i = (1/n)Σ_j[k(θ_j,θ_i)∇L(θ_j) −
/// (T/N)∇_{θ_j}k(θ_j,θ_i)] (RBF kernel, median-heuristic bandwidth unless <see cref="Options.KernelBandwidth"/>) before
/// AdamW steps; the validation loss is the ensemble's. One particle is the LoRA trainer bit for bit. Checkpoint
/// ensembles train once and keep the weights at the end of the last n epochs. MC dropout trains once and scores n
/// passes with the LoRA dropout layers on.</para>
/// <para>Cost: SVGD and deep ensembles n× the LoRA trainer's compute; scoring n× for every method.</para>
/// </remarks>
public sealed partial class SvgdLoraTextClassificationTrainer : IEstimator<EnsembleTextClassificationTransformer>
{
    private readonly Options options;
    private readonly ClassificationKind kind;
    private readonly ITextClassifierFactory? factory;

    internal SvgdLoraTextClassificationTrainer(Options options, ClassificationKind kind, ITextClassifierFactory? factory = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        this.kind = kind;
        this.factory = factory;
    }

    /// <summary>
    /// The output shape: the input columns plus Score and PredictedLabel (and Probability for binary), PredictiveEntropy
    /// and MutualInformation. Checks the label and text columns.
    /// </summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        var shape = new TextClassifierTraining(options, kind, factory).GetOutputSchema(inputSchema);
        var definition = SchemaDefinition.Create(typeof(Uncertainty));
        definition[nameof(Uncertainty.PredictiveEntropy)].ColumnName = options.PredictiveEntropyColumnName;
        definition[nameof(Uncertainty.MutualInformation)].ColumnName = options.MutualInformationColumnName;
        return new MLContext().Transforms.CustomMapping<OutputShapes.NoInput, Uncertainty>((_, _) => { }, contractName: null, outputSchemaDefinition: definition)
            .GetOutputSchema(shape);
    }

    /// <summary>Trains the ensemble on <paramref name="input"/> and returns the fitted transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or mistyped, or an ensemble setting is out of range.</exception>
    /// <exception cref="ArgumentException">An option is invalid or the data has no labeled rows.</exception>
    /// <exception cref="TrainingDivergedException">The loss or gradient became NaN or infinite.</exception>
    public EnsembleTextClassificationTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        options.ValidateMethod();
        var ensemble = new EnsembleTraining(options);
        var training = new TextClassifierTraining(options, kind, factory, ensemble);
        var classifier = PeftTextClassificationTransformer.Create(training.Fit(input));
        var settings = new EnsembleSettings(options.Method, ensemble.Members, options.Method == EnsembleMethod.MonteCarloDropout ? options.ParticleCount : 0,
            options.MonteCarloSeed, options.PredictiveEntropyColumnName, options.MutualInformationColumnName);
        var fitted = new EnsembleTextClassificationTransformer(classifier, settings);
        if (options.Method != EnsembleMethod.MonteCarloDropout) return fitted;
        // MC dropout draws masks from the adapter's random stream, whose seed a loaded model sets; scoring through the
        // saved and reloaded model makes a pipeline reloaded later predict bit for bit the same.
        string folder = Directory.CreateTempSubdirectory("peft-mc-dropout-").FullName;
        try
        {
            fitted.SaveEnsemble(folder);
            var reloaded = EnsembleFiles.Load(folder, training.Factory, baseModel: null, options.Log);
            return new EnsembleTextClassificationTransformer(reloaded.Classifier, reloaded.Settings, classifier.TrainingHistory);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Output shape of the uncertainty columns.</summary>
    internal sealed class Uncertainty
    {
        public float PredictiveEntropy { get; set; }

        public float MutualInformation { get; set; }
    }
}
