namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// Wall time in optimizer steps only, as samples/LoraSentiment's StepTimer and the PyTorch reference: from the first
/// step report of an epoch to its last, leaving out per-epoch validation.
/// </summary>
internal sealed class OptimizerStepTimer : IProgress<TrainingProgress>
{
    private TimeSpan epochStart;
    private TimeSpan lastStep;
    private bool inEpoch;

    public double StepSeconds { get; private set; }

    public void Report(TrainingProgress value)
    {
        switch (value.Phase)
        {
            case TrainingPhase.Step:
                inEpoch = true;
                lastStep = value.Elapsed;
                break;
            case TrainingPhase.Validation or TrainingPhase.Completed when inEpoch:
                StepSeconds += (lastStep - epochStart).TotalSeconds;
                epochStart = value.Elapsed;
                inEpoch = false;
                break;
            case TrainingPhase.Validation or TrainingPhase.Completed or TrainingPhase.Resumed:
                epochStart = value.Elapsed;
                break;
        }
    }
}
