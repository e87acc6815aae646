namespace Microsoft.ML.AutoML;

/// <summary>Whether data is cached before the trainer.</summary>
public enum CacheBeforeTrainer
{
    /// <summary>Decide automatically.</summary>
    Auto,

    /// <summary>Always cache.</summary>
    On,

    /// <summary>Never cache.</summary>
    Off,
}

/// <summary>Settings shared by experiments.</summary>
public abstract class ExperimentSettings
{
    /// <summary>Creates settings with ML.NET's defaults.</summary>
    protected ExperimentSettings()
    {
    }

    /// <summary>The time budget in seconds (enforced once SetTrainingTimeInSeconds is called).</summary>
    public uint MaxExperimentTimeInSeconds { get; set; } = 86400;

    /// <summary>Cancels the experiment.</summary>
    public CancellationToken CancellationToken { get; set; }

    /// <summary>The cache folder name.</summary>
    public string CacheDirectoryName { get; set; } = "Microsoft.ML.AutoML";

    /// <summary>Whether data is cached before the trainer.</summary>
    public CacheBeforeTrainer CacheBeforeTrainer { get; set; } = CacheBeforeTrainer.Auto;

    /// <summary>The memory budget, if any.</summary>
    public double? MaximumMemoryUsageInMegaByte { get; set; }

    /// <summary>The maximum number of trials (enforced once SetMaxModelToExplore is called).</summary>
    public int MaxModels { get; set; } = int.MaxValue;
}
