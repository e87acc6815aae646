using Microsoft.ML.SearchSpace;

namespace Microsoft.ML.AutoML;

/// <summary>The settings of one trial: its id, timing and the parameter proposed by the tuner.</summary>
public class TrialSettings
{
    /// <summary>The trial id (0, 1, ... in proposal order).</summary>
    public int TrialId { get; set; }

    /// <summary>When the trial started (UTC).</summary>
    public DateTime StartedAtUtc { get; set; }

    /// <summary>When the trial ended (UTC).</summary>
    public DateTime? EndedAtUtc { get; set; }

    /// <summary>The proposed parameter (one member per experiment search-space key).</summary>
    public Parameter Parameter { get; set; } = Parameter.CreateNestedParameter();
}

/// <summary>The outcome of a trial. Tuners minimise <see cref="Loss"/>, which also picks the best trial.</summary>
public class TrialResult : IEqualityComparer<TrialResult>
{
    /// <summary>The trial's settings.</summary>
    public TrialSettings TrialSettings { get; set; } = new();

    /// <summary>The trained model.</summary>
    public ITransformer? Model { get; set; }

    /// <summary>The value tuners minimise and the experiment compares (lower is better).</summary>
    public double Loss { get; set; }

    /// <summary>The reported metric (for display).</summary>
    public double Metric { get; set; }

    /// <summary>The trial's duration.</summary>
    public double DurationInMilliseconds { get; set; }

    /// <summary>The peak CPU usage, if measured.</summary>
    public double? PeakCpu { get; set; }

    /// <summary>The peak memory, if measured.</summary>
    public double? PeakMemoryInMegaByte { get; set; }

    /// <summary>Trials are equal when their ids are equal.</summary>
    public bool Equals(TrialResult? x, TrialResult? y)
        => x is null ? y is null : y is not null && x.TrialSettings?.TrialId == y.TrialSettings?.TrialId;

    /// <summary>The hash of the trial id.</summary>
    public int GetHashCode(TrialResult obj) => (obj ?? throw new ArgumentNullException(nameof(obj))).TrialSettings?.TrialId.GetHashCode() ?? 0;
}

/// <summary>Proposes parameters and learns from trial results.</summary>
public interface ITuner
{
    /// <summary>The parameter for the trial described by <paramref name="settings"/>.</summary>
    Parameter Propose(TrialSettings settings);

    /// <summary>Learns from a finished (or failed, Loss = double.MaxValue) trial.</summary>
    void Update(TrialResult result);
}

/// <summary>Runs one trial (train and score a model for the proposed parameter).</summary>
public interface ITrialRunner : IDisposable
{
    /// <summary>Runs the trial; should stop promptly when <paramref name="ct"/> is cancelled.</summary>
    Task<TrialResult> RunAsync(TrialSettings settings, CancellationToken ct);
}

/// <summary>Observes the experiment.</summary>
public interface IMonitor
{
    /// <summary>A trial completed.</summary>
    void ReportCompletedTrial(TrialResult result);

    /// <summary>A trial became the best so far.</summary>
    void ReportBestTrial(TrialResult result);

    /// <summary>A trial failed.</summary>
    void ReportFailTrial(TrialSettings settings, Exception? exception = null);

    /// <summary>A trial started.</summary>
    void ReportRunningTrial(TrialSettings settings);
}
