using System.Diagnostics;
using Microsoft.ML.AutoML;
using Microsoft.ML.Data;
using Microsoft.ML.SearchSpace;

namespace Microsoft.ML.Peft.AutoML;

/// <summary>
/// An AutoML trial runner that scores each proposed LoRA configuration by its Laplace log marginal likelihood
/// (model evidence) on the training data: <c>Loss = −log p(D)</c>, <c>Metric = log p(D)</c>; or, with
/// <see cref="LoraEvidenceOptions.ConditionalFraction"/>, by the conditional log p(D₂ | D₁) of a held-out share of the
/// training rows. The validation set is only scored for reporting (<see cref="LoraEvidenceTrialResult.Evidence"/>),
/// never used to choose.
/// </summary>
/// <remarks>
/// <para>Register it after <c>SetPipeline</c> (contract §9's custom-objective pattern; the last runner set wins):</para>
/// <code>
/// var lora = ml.Auto().MulticlassLoraTextClassification(template);
/// var pipeline = ml.Transforms.Conversion.MapValueToKey("Label").Append(lora).Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
/// var best = ml.Auto().CreateExperiment().SetPipeline(pipeline).SetDataset(train, dev)
///     .SetTrialRunner(services => new LoraEvidenceTrialRunner(services)).SetGridSearchTuner().SetMaxModelToExplore(8).Run();
/// </code>
/// <para>Each trial builds the pipeline from the "_pipeline_" parameter, fits it on the training set, finds the
/// <see cref="LoraTextClassificationTransformer"/> in the fitted chain and runs <see cref="LoraEvidence.Compute"/> on
/// the training rows as they reach it. The prior precision comes from the "laplace" parameter when the experiment
/// has that search space (<see cref="LaplacePriorParameters"/>), else from <see cref="LoraEvidenceOptions.PriorPrecision"/>.
/// Cancellation is checked before and after training, at every training step of estimators built by
/// <see cref="LoraSweepCatalog"/>, and between Laplace batches.</para>
/// </remarks>
public sealed class LoraEvidenceTrialRunner : ITrialRunner
{
    /// <summary>The experiment key of the pipeline's parameter (set by <c>SetPipeline</c>).</summary>
    public const string PipelineSearchSpaceKey = "_pipeline_";

    /// <summary>The experiment key of an optional <see cref="LaplacePriorParameters"/> search space.</summary>
    public const string PriorSearchSpaceKey = "laplace";

    private readonly MLContext context;
    private readonly SweepablePipeline pipeline;
    private readonly ITrainValidateDatasetManager datasets;
    private readonly LoraEvidenceOptions options;

    /// <summary>Resolves the experiment's MLContext, pipeline (<c>SetPipeline</c>) and train/validation data (<c>SetDataset(train, validation)</c>).</summary>
    /// <exception cref="InvalidOperationException">A service is missing (names the call that registers it).</exception>
    public LoraEvidenceTrialRunner(IServiceProvider services, LoraEvidenceOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(services);
        context = services.GetService(typeof(MLContext)) as MLContext
            ?? throw new InvalidOperationException("LoraEvidenceTrialRunner: no MLContext is registered; create the experiment with mlContext.Auto().CreateExperiment()");
        pipeline = services.GetService(typeof(SweepablePipeline)) as SweepablePipeline
            ?? throw new InvalidOperationException("LoraEvidenceTrialRunner: no pipeline is registered; call SetPipeline before SetTrialRunner");
        datasets = services.GetService(typeof(IDatasetManager)) switch
        {
            ITrainValidateDatasetManager trainValidate => trainValidate,
            null => throw new InvalidOperationException("LoraEvidenceTrialRunner: no dataset is registered; call SetDataset(train, validation)"),
            var other => throw new InvalidOperationException($"LoraEvidenceTrialRunner: the evidence needs one training set, not {other.GetType().Name}; call SetDataset(train, validation)"),
        };
        this.options = options ?? new LoraEvidenceOptions();
        this.options.Validate();
    }

    /// <inheritdoc/>
    public Task<TrialResult> RunAsync(TrialSettings settings, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(settings);
        ct.ThrowIfCancellationRequested();
        var watch = Stopwatch.StartNew();
        var trialOptions = WithPrior(options, settings.Parameter);
        var train = datasets.LoadTrainDataset(context, settings);
        var validation = datasets.LoadValidateDataset(context, settings);
        // A conditional evidence trains on D₁ and scores the held-out D₂: the same seeded split in every trial.
        IDataView? heldOut = null;
        if (options.ConditionalFraction is { } fraction)
        {
            var split = context.Data.TrainTestSplit(train, fraction, seed: options.ConditionalSplitSeed);
            (train, heldOut) = (split.TrainSet, split.TestSet);
        }

        TransformerChain<ITransformer> model;
        using (TrialCancellation.Enter(ct))
            model = pipeline.BuildFromOption(context, settings.Parameter[PipelineSearchSpaceKey]).Fit(train);
        ct.ThrowIfCancellationRequested();

        var (lora, atLora) = FindLora(model, [train, validation, heldOut])
            ?? throw new InvalidOperationException($"LoraEvidenceTrialRunner: the fitted pipeline '{pipeline.ToString(settings.Parameter[PipelineSearchSpaceKey])}' has no LoraTextClassificationTransformer");
        var evidence = heldOut is null
            ? LoraEvidence.Compute(lora, atLora[0]!, atLora[1], trialOptions, ct)
            : LoraEvidence.ComputeConditional(lora, atLora[0]!, atLora[2]!, atLora[1], trialOptions, ct);
        double score = evidence.ConditionalLogMarginalLikelihood ?? evidence.LogMarginalLikelihood;
        return Task.FromResult<TrialResult>(new LoraEvidenceTrialResult
        {
            TrialSettings = settings,
            Model = model,
            Metric = score,
            Loss = -score,
            DurationInMilliseconds = watch.Elapsed.TotalMilliseconds,
            Evidence = evidence,
        });
    }

    /// <summary>Nothing to release: trained models belong to the trial results.</summary>
    public void Dispose()
    {
    }

    private static LoraEvidenceOptions WithPrior(LoraEvidenceOptions options, Parameter parameter)
    {
        if (!parameter.TryGetValue(PriorSearchSpaceKey, out var prior)) return options;
        var p = prior.AsType<LaplacePriorParameters>();
        return options with { PriorPrecision = p.TunePriorPrecision ? null : p.PriorPrecision };
    }

    /// <summary>The first LoRA classifier of the (possibly nested) chain, with each data set (null stays null) transformed up to its input.</summary>
    private static (LoraTextClassificationTransformer Model, IDataView?[] Views)? FindLora(IEnumerable<ITransformer> chain, IDataView?[] views)
    {
        foreach (var transformer in chain)
        {
            if (transformer is LoraTextClassificationTransformer lora) return (lora, views);
            if (transformer is IEnumerable<ITransformer> nested && FindLora(nested, views) is { } found) return found;
            views = views.Select(v => v is null ? null : transformer.Transform(v)).ToArray();
        }
        return null;
    }
}

/// <summary>A <see cref="TrialResult"/> that also carries the evidence details and the validation scores of the trial.</summary>
public sealed class LoraEvidenceTrialResult : TrialResult
{
    /// <summary>The evidence, prior precision and validation figures of this trial.</summary>
    public required LoraEvidenceResult Evidence { get; init; }
}
