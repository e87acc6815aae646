using Microsoft.ML.SearchSpace;
using static Microsoft.ML.DataOperationsCatalog;

namespace Microsoft.ML.AutoML;

/// <summary>Configuration helpers of <see cref="AutoMLExperiment"/>.</summary>
public static class AutoMLExperimentExtension
{
    private const string PipelineKey = "_pipeline_";

    /// <summary>Trains on <paramref name="train"/> and validates on <paramref name="validation"/>.</summary>
    public static AutoMLExperiment SetDataset(this AutoMLExperiment experiment, IDataView train, IDataView validation, bool subSamplingTrainDataset = false)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        var manager = new TrainValidateDatasetManager(train, validation);
        experiment.Services.AddInstance(typeof(IDatasetManager), manager);
        experiment.Services.AddInstance(typeof(ITrainValidateDatasetManager), manager);
        return experiment;
    }

    /// <summary>Trains on the split's train set and validates on its test set.</summary>
    public static AutoMLExperiment SetDataset(this AutoMLExperiment experiment, TrainTestData trainValidationSplit)
        => experiment.SetDataset(trainValidationSplit.TrainSet, trainValidationSplit.TestSet);

    /// <summary>Cross-validates on <paramref name="dataset"/> with <paramref name="fold"/> folds.</summary>
    public static AutoMLExperiment SetDataset(this AutoMLExperiment experiment, IDataView dataset, int fold = 10, string? samplingKeyColumnName = null)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        var manager = new CrossValidateDatasetManager(dataset, fold, samplingKeyColumnName);
        experiment.Services.AddInstance(typeof(IDatasetManager), manager);
        experiment.Services.AddInstance(typeof(ICrossValidateDatasetManager), manager);
        return experiment;
    }

    /// <summary>Optimises a multiclass metric of the built-in pipeline runner.</summary>
    public static AutoMLExperiment SetMulticlassClassificationMetric(this AutoMLExperiment experiment, MulticlassClassificationMetric metric,
        string labelColumn = "label", string predictedColumn = "PredictedLabel")
        => SetMetric(experiment, new MulticlassMetricManager(metric, labelColumn, predictedColumn));

    /// <summary>Optimises a binary metric of the built-in pipeline runner.</summary>
    public static AutoMLExperiment SetBinaryClassificationMetric(this AutoMLExperiment experiment, BinaryClassificationMetric metric,
        string labelColumn = "label", string predictedColumn = "PredictedLabel")
        => SetMetric(experiment, new BinaryMetricManager(metric, labelColumn, predictedColumn));

    /// <summary>Optimises a regression metric of the built-in pipeline runner.</summary>
    public static AutoMLExperiment SetRegressionMetric(this AutoMLExperiment experiment, RegressionMetric metric,
        string labelColumn = "Label", string scoreColumn = "Score")
        => SetMetric(experiment, new RegressionMetricManager(metric, labelColumn, scoreColumn));

    private static AutoMLExperiment SetMetric(AutoMLExperiment experiment, IEvaluateMetricManager manager)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        experiment.Services.AddInstance(typeof(IMetricManager), manager);
        experiment.Services.AddInstance(typeof(IEvaluateMetricManager), manager);
        return experiment;
    }

    /// <summary>
    /// Sweeps <paramref name="pipeline"/>: adds its search space under "_pipeline_", registers it, the built-in pipeline
    /// runner and the cost-frugal tuner. A custom runner set afterwards replaces the built-in one.
    /// </summary>
    public static AutoMLExperiment SetPipeline(this AutoMLExperiment experiment, SweepablePipeline pipeline)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        ArgumentNullException.ThrowIfNull(pipeline);
        experiment.AddSearchSpace(PipelineKey, pipeline.SearchSpace);
        experiment.Services.AddInstance(typeof(SweepablePipeline), pipeline);
        experiment.SetTrialRunner(provider => new SweepablePipelineRunner(provider, PipelineKey));
        experiment.SetCostFrugalTuner();
        return experiment;
    }

    /// <summary>Uses the cost-frugal (CFO) tuner, starting from the search space's default.</summary>
    public static AutoMLExperiment SetCostFrugalTuner(this AutoMLExperiment experiment)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        return experiment.SetTuner(provider => new CostFrugalTuner(experiment.Settings.SearchSpace, experiment.Settings.Seed));
    }

    /// <summary>
    /// Uses the ECI cost-frugal tuner, which needs the pipeline of <see cref="SetPipeline"/>. The stand-in runs one CFO
    /// over the whole search space (the pipeline's "_SCHEMA_" choice is one more dimension) instead of ML.NET's one CFO
    /// per schema chosen by estimated cost for improvement; for a single-schema pipeline the two are the same search.
    /// </summary>
    public static AutoMLExperiment SetEciCostFrugalTuner(this AutoMLExperiment experiment)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        return experiment.SetTuner(provider => provider.GetService(typeof(SweepablePipeline)) is null
            ? throw new InvalidOperationException("EciCostFrugalTuner needs a SweepablePipeline: call SetPipeline first.")
            : new CostFrugalTuner(experiment.Settings.SearchSpace, experiment.Settings.Seed));
    }

    /// <summary>Uses random search (seeded by <paramref name="seed"/>, else the experiment's seed).</summary>
    public static AutoMLExperiment SetRandomSearchTuner(this AutoMLExperiment experiment, int? seed = null)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        return experiment.SetTuner(provider => new RandomSearchTuner(experiment.Settings.SearchSpace, seed ?? experiment.Settings.Seed));
    }

    /// <summary>Uses grid search with <paramref name="step"/> values per continuous dimension.</summary>
    public static AutoMLExperiment SetGridSearchTuner(this AutoMLExperiment experiment, int step = 10)
    {
        ArgumentNullException.ThrowIfNull(experiment);
        if (step <= 0)
            throw new ArgumentOutOfRangeException(nameof(step), $"step must be positive, got {step}.");
        return experiment.SetTuner(provider => new GridSearchTuner(experiment.Settings.SearchSpace, step));
    }
}

/// <summary>
/// The built-in runner: builds the pipeline from the trial's "_pipeline_" parameter, fits it, and scores it with the
/// registered metric manager (train/validate, or the mean over cross-validation folds); Loss = −metric when maximised.
/// </summary>
internal sealed class SweepablePipelineRunner : ITrialRunner
{
    private readonly MLContext _context;
    private readonly SweepablePipeline _pipeline;
    private readonly IDatasetManager _datasets;
    private readonly IEvaluateMetricManager _metric;
    private readonly string _key;

    public SweepablePipelineRunner(IServiceProvider provider, string key)
    {
        _context = (MLContext)provider.GetService(typeof(MLContext))!;
        _pipeline = provider.GetService(typeof(SweepablePipeline)) as SweepablePipeline ?? throw new InvalidOperationException("SetPipeline was not called.");
        _datasets = provider.GetService(typeof(IDatasetManager)) as IDatasetManager ?? throw new InvalidOperationException("SetDataset was not called.");
        _metric = provider.GetService(typeof(IEvaluateMetricManager)) as IEvaluateMetricManager
                  ?? throw new InvalidOperationException("No metric is set: call SetMulticlassClassificationMetric, SetBinaryClassificationMetric or SetRegressionMetric, or set a custom trial runner.");
        _key = key;
    }

    public Task<TrialResult> RunAsync(TrialSettings settings, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var estimator = _pipeline.BuildFromOption(_context, settings.Parameter[_key]);
        ITransformer model;
        double metric;
        switch (_datasets)
        {
            case ITrainValidateDatasetManager trainValidate:
                model = estimator.Fit(trainValidate.LoadTrainDataset(_context, settings));
                metric = _metric.Evaluate(_context, model.Transform(trainValidate.LoadValidateDataset(_context, settings)));
                break;
            case ICrossValidateDatasetManager cv:
                var folds = _context.Data.CrossValidationSplit(cv.Dataset, cv.Fold, cv.SamplingKeyColumnName, _context.Seed);
                var scored = folds.Select(f =>
                {
                    ct.ThrowIfCancellationRequested();
                    var foldModel = estimator.Fit(f.TrainSet);
                    return (Model: foldModel, Metric: _metric.Evaluate(_context, foldModel.Transform(f.TestSet)));
                }).ToList();
                metric = scored.Average(s => s.Metric);
                model = (_metric.IsMaximize ? scored.MaxBy(s => s.Metric) : scored.MinBy(s => s.Metric)).Model;
                break;
            default:
                throw new InvalidOperationException($"Unsupported dataset manager {_datasets.GetType().Name}.");
        }
        return Task.FromResult(new TrialResult
        {
            TrialSettings = settings,
            Model = model,
            Metric = metric,
            Loss = _metric.IsMaximize ? -metric : metric,
            DurationInMilliseconds = watch.Elapsed.TotalMilliseconds,
        });
    }

    public void Dispose()
    {
    }
}
