namespace Microsoft.ML.Peft.Training;

/// <summary>
/// The counters of a training run that, together with the trainable weights and the optimizer moments, determine the
/// rest of the run. Serialised as <c>trainer_state.json</c> in every checkpoint.
/// </summary>
internal sealed class TrainerState
{
    public int Format { get; set; } = 1;

    /// <summary>Hash of the settings, data and trainable parameter names/shapes the run was started with.</summary>
    public string Fingerprint { get; set; } = "";

    /// <summary>0-based epoch in progress.</summary>
    public int Epoch { get; set; }

    /// <summary>Index (in the epoch's batch plan) of the next micro-batch to run.</summary>
    public int NextBatch { get; set; }

    /// <summary>Optimizer steps done.</summary>
    public int GlobalStep { get; set; }

    /// <summary>Σ loss·rows over the epoch so far (for the epoch's mean training loss).</summary>
    public double EpochLossSum { get; set; }

    /// <summary>Rows seen in the epoch so far.</summary>
    public long EpochRows { get; set; }

    public double? BestValidationLoss { get; set; }

    public int? BestEpoch { get; set; }

    public int EpochsWithoutImprovement { get; set; }

    /// <summary>Early stopping fired.</summary>
    public bool Stopped { get; set; }

    /// <summary>Positions of the model's random streams (<see cref="ISequenceClassifier.RandomStreams"/>).</summary>
    public List<long> RandomOffsets { get; set; } = [];

    /// <summary>Adam step count per trainable parameter name.</summary>
    public Dictionary<string, int> AdamSteps { get; set; } = [];

    /// <summary>One entry per finished epoch.</summary>
    public List<EpochRecord> History { get; set; } = [];
}

/// <summary>Summary of one finished epoch.</summary>
internal sealed class EpochRecord
{
    public int Epoch { get; set; }

    public double TrainLoss { get; set; }

    public double? ValidationLoss { get; set; }

    public double? ValidationAccuracy { get; set; }
}
