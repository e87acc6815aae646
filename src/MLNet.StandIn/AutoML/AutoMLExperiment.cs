using System.Diagnostics;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.AutoML;

/// <summary>
/// A hyper-parameter search: a tuner proposes parameters over the experiment's search space, a trial runner trains and
/// scores them, monitors observe. <see cref="RunAsync"/> returns the trial with the lowest <see cref="TrialResult.Loss"/>.
/// A failure before any trial succeeded is rethrown; later failures count as Loss = double.MaxValue. The loop stops at the
/// time limit (<see cref="SetTrainingTimeInSeconds"/>), the model budget (<see cref="SetMaxModelToExplore"/>) or on cancellation.
/// </summary>
public class AutoMLExperiment
{
    private readonly MLContext _context;
    private readonly AutoMLExperimentSettings _settings;
    private bool _hasTimeLimit;
    private bool _hasModelLimit;

    /// <summary>An experiment on <paramref name="context"/>; the seed defaults to the context's seed.</summary>
    public AutoMLExperiment(MLContext context, AutoMLExperimentSettings settings)
    {
        _context = context ?? throw new ArgumentNullException(nameof(context));
        _settings = settings ?? throw new ArgumentNullException(nameof(settings));
        _settings.Seed ??= context.Seed;
        Services.AddInstance(typeof(MLContext), context);
        Services.AddInstance(typeof(AutoMLExperimentSettings), settings);
        Services.AddFactory(typeof(IMonitor), provider => new MLContextMonitor(context));
        Services.AddFactory(typeof(ITuner), provider => new CostFrugalTuner(_settings.SearchSpace, _settings.Seed));
    }

    internal ServiceRegistry Services { get; } = new();

    internal MLContext Context => _context;

    internal AutoMLExperimentSettings Settings => _settings;

    /// <summary>Stops the experiment after <paramref name="trainingTimeInSeconds"/>.</summary>
    public AutoMLExperiment SetTrainingTimeInSeconds(uint trainingTimeInSeconds)
    {
        _settings.MaxExperimentTimeInSeconds = trainingTimeInSeconds;
        _hasTimeLimit = true;
        return this;
    }

    /// <summary>Stops the experiment after <paramref name="maxModel"/> trials.</summary>
    public AutoMLExperiment SetMaxModelToExplore(int maxModel)
    {
        if (maxModel <= 0)
            throw new ArgumentOutOfRangeException(nameof(maxModel), $"maxModel must be positive, got {maxModel}.");
        _settings.MaxModels = maxModel;
        _hasModelLimit = true;
        return this;
    }

    /// <summary>Records a memory budget (not enforced by the stand-in).</summary>
    public AutoMLExperiment SetMaximumMemoryUsageInMegaByte(double value = double.MaxValue)
    {
        if (!(value > 0))
            throw new ArgumentOutOfRangeException(nameof(value), "The memory budget must be positive.");
        _settings.MaximumMemoryUsageInMegaByte = value;
        return this;
    }

    /// <summary>Adds a top-level key to the experiment's search space (and to every proposed parameter).</summary>
    public AutoMLExperiment AddSearchSpace(string key, SearchSpace.SearchSpace searchSpace)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        ArgumentNullException.ThrowIfNull(searchSpace);
        _settings.SearchSpace[key] = searchSpace;
        return this;
    }

    /// <summary>Uses <paramref name="monitor"/>.</summary>
    public AutoMLExperiment SetMonitor<TMonitor>(TMonitor monitor)
        where TMonitor : class, IMonitor
    {
        Services.AddInstance(typeof(IMonitor), monitor ?? throw new ArgumentNullException(nameof(monitor)));
        return this;
    }

    /// <summary>Uses a monitor built by <paramref name="factory"/>.</summary>
    public AutoMLExperiment SetMonitor<TMonitor>(Func<IServiceProvider, TMonitor> factory)
        where TMonitor : class, IMonitor
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.AddFactory(typeof(IMonitor), factory);
        return this;
    }

    /// <summary>Uses a <typeparamref name="TMonitor"/> constructed from registered services.</summary>
    public AutoMLExperiment SetMonitor<TMonitor>()
        where TMonitor : class, IMonitor
    {
        Services.AddType(typeof(IMonitor), typeof(TMonitor));
        return this;
    }

    /// <summary>Uses <paramref name="runner"/>.</summary>
    public AutoMLExperiment SetTrialRunner<TTrialRunner>(TTrialRunner runner)
        where TTrialRunner : class, ITrialRunner
    {
        Services.AddInstance(typeof(ITrialRunner), runner ?? throw new ArgumentNullException(nameof(runner)));
        return this;
    }

    /// <summary>Uses a runner built by <paramref name="factory"/> (it can resolve MLContext, SweepablePipeline, IDatasetManager, ...).</summary>
    public AutoMLExperiment SetTrialRunner<TTrialRunner>(Func<IServiceProvider, TTrialRunner> factory)
        where TTrialRunner : class, ITrialRunner
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.AddFactory(typeof(ITrialRunner), factory);
        return this;
    }

    /// <summary>Uses a <typeparamref name="TTrialRunner"/> constructed from registered services.</summary>
    public AutoMLExperiment SetTrialRunner<TTrialRunner>()
        where TTrialRunner : class, ITrialRunner
    {
        Services.AddType(typeof(ITrialRunner), typeof(TTrialRunner));
        return this;
    }

    /// <summary>Uses <paramref name="proposer"/> (replaces the previous tuner).</summary>
    public AutoMLExperiment SetTuner<TTuner>(TTuner proposer)
        where TTuner : class, ITuner
    {
        Services.AddInstance(typeof(ITuner), proposer ?? throw new ArgumentNullException(nameof(proposer)));
        return this;
    }

    /// <summary>Uses a tuner built by <paramref name="factory"/>.</summary>
    public AutoMLExperiment SetTuner<TTuner>(Func<IServiceProvider, TTuner> factory)
        where TTuner : class, ITuner
    {
        ArgumentNullException.ThrowIfNull(factory);
        Services.AddFactory(typeof(ITuner), factory);
        return this;
    }

    /// <summary>Uses a <typeparamref name="TTuner"/> constructed from registered services.</summary>
    public AutoMLExperiment SetTuner<TTuner>()
        where TTuner : class, ITuner
    {
        Services.AddType(typeof(ITuner), typeof(TTuner));
        return this;
    }

    /// <summary>Runs the experiment synchronously.</summary>
    public TrialResult Run() => RunAsync().GetAwaiter().GetResult();

    /// <summary>Runs trials until a stop condition; returns the best (lowest Loss) trial.</summary>
    /// <exception cref="TimeoutException">The experiment stopped before any trial succeeded.</exception>
    public async Task<TrialResult> RunAsync(CancellationToken ct = default)
    {
        var scope = Services.CreateScope();
        var runner = scope.GetRequired<ITrialRunner>();
        var tuner = scope.GetRequired<ITuner>();
        var monitor = scope.GetRequired<IMonitor>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct, _settings.CancellationToken);
        if (_hasTimeLimit)
            stop.CancelAfter(TimeSpan.FromSeconds(_settings.MaxExperimentTimeInSeconds));

        TrialResult? best = null;
        int trialId = 0;
        try
        {
            while (!stop.IsCancellationRequested && (!_hasModelLimit || trialId < _settings.MaxModels))
            {
                var settings = new TrialSettings { TrialId = trialId++, StartedAtUtc = DateTime.UtcNow };
                settings.Parameter = tuner.Propose(settings);
                monitor.ReportRunningTrial(settings);
                var watch = Stopwatch.StartNew();
                try
                {
                    var result = await runner.RunAsync(settings, stop.Token).ConfigureAwait(false);
                    settings.EndedAtUtc = DateTime.UtcNow;
                    result.TrialSettings ??= settings;
                    if (result.DurationInMilliseconds == 0)
                        result.DurationInMilliseconds = watch.Elapsed.TotalMilliseconds;
                    monitor.ReportCompletedTrial(result);
                    tuner.Update(result);
                    if (!double.IsNaN(result.Loss) && (best == null || result.Loss < best.Loss))
                    {
                        best = result;
                        monitor.ReportBestTrial(result);
                    }
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                    monitor.ReportFailTrial(settings);
                    break;
                }
                catch (Exception ex)
                {
                    settings.EndedAtUtc = DateTime.UtcNow;
                    monitor.ReportFailTrial(settings, ex);
                    if (best == null)
                        throw;
                    tuner.Update(new TrialResult
                    {
                        TrialSettings = settings,
                        Loss = double.MaxValue,
                        Metric = double.NaN,
                        DurationInMilliseconds = watch.Elapsed.TotalMilliseconds,
                    });
                }
            }
        }
        finally
        {
            runner.Dispose();
        }

        return best ?? throw new TimeoutException(
            "Training time finished without completing a successful trial. Either no trial has completed or the metric for all completed trials are NaN or Infinity. Please try increasing the training time or checking data.");
    }

    /// <summary>Experiment settings: the seed and the root search space.</summary>
    public class AutoMLExperimentSettings : ExperimentSettings
    {
        /// <summary>The seed of the tuners (defaults to the MLContext's seed).</summary>
        public int? Seed { get; set; }

        /// <summary>The root search space (one key per AddSearchSpace/SetPipeline).</summary>
        public SearchSpace.SearchSpace SearchSpace { get; set; } = new();
    }
}

/// <summary>The default monitor: writes trial progress to <see cref="MLContext.Log"/>.</summary>
internal sealed class MLContextMonitor : IMonitor
{
    private readonly MLContext _context;

    public MLContextMonitor(MLContext context)
    {
        _context = context;
    }

    public void ReportBestTrial(TrialResult result)
        => _context.WriteLog(ChannelMessageKind.Info, "AutoMLExperiment", $"Update Best Trial - Id: {result.TrialSettings.TrialId} - Metric: {result.Metric} - Pipeline: {result.TrialSettings.Parameter}");

    public void ReportCompletedTrial(TrialResult result)
        => _context.WriteLog(ChannelMessageKind.Info, "AutoMLExperiment", $"Update Completed Trial - Id: {result.TrialSettings.TrialId} - Metric: {result.Metric} - Loss: {result.Loss} - Duration: {result.DurationInMilliseconds}");

    public void ReportFailTrial(TrialSettings settings, Exception? exception = null)
        => _context.WriteLog(ChannelMessageKind.Warning, "AutoMLExperiment", $"Update Failed Trial - Id: {settings.TrialId} - {exception?.Message ?? "cancelled"}");

    public void ReportRunningTrial(TrialSettings settings)
        => _context.WriteLog(ChannelMessageKind.Info, "AutoMLExperiment", $"Update Running Trial - Id: {settings.TrialId}");
}
