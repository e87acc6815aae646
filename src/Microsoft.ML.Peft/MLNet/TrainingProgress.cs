namespace Microsoft.ML.Peft;

/// <summary>What a <see cref="TrainingProgress"/> report announces.</summary>
public enum TrainingPhase
{
    /// <summary>An optimizer step finished (<see cref="TrainingProgress.Loss"/> is its mean training loss).</summary>
    Step,

    /// <summary>An epoch finished and the validation set was scored.</summary>
    Validation,

    /// <summary>A checkpoint was written (<see cref="TrainingProgress.CheckpointPath"/>).</summary>
    Checkpoint,

    /// <summary>Training resumed from a checkpoint (<see cref="TrainingProgress.CheckpointPath"/>).</summary>
    Resumed,

    /// <summary>Training finished (all epochs, or early stopping).</summary>
    Completed,
}

/// <summary>
/// A progress report of LoRA fine-tuning. Reports are delivered synchronously on the training thread, in order; an
/// exception thrown by the receiver aborts training (the last checkpoint stays valid, and fitting again with the same
/// checkpoint folder resumes from it).
/// </summary>
public sealed class TrainingProgress
{
    /// <summary>What happened.</summary>
    public TrainingPhase Phase { get; init; }

    /// <summary>0-based epoch the report belongs to.</summary>
    public int Epoch { get; init; }

    /// <summary>Epochs planned.</summary>
    public int Epochs { get; init; }

    /// <summary>Optimizer steps done so far.</summary>
    public int Step { get; init; }

    /// <summary>Optimizer steps planned for the whole run.</summary>
    public int TotalSteps { get; init; }

    /// <summary>Mean cross-entropy (nats) of the last optimizer step's rows; for <see cref="TrainingPhase.Validation"/>, the epoch's mean training loss.</summary>
    public double Loss { get; init; }

    /// <summary>Learning rate used by the last optimizer step.</summary>
    public double LearningRate { get; init; }

    /// <summary>Global L2 norm of the gradient before clipping, at the last step.</summary>
    public double GradientNorm { get; init; }

    /// <summary>Mean validation cross-entropy (nats), when a validation set was scored.</summary>
    public double? ValidationLoss { get; init; }

    /// <summary>Validation accuracy, when a validation set was scored.</summary>
    public double? ValidationAccuracy { get; init; }

    /// <summary>The checkpoint written or resumed from.</summary>
    public string? CheckpointPath { get; init; }

    /// <summary>Wall time since training (this call of Fit) started.</summary>
    public TimeSpan Elapsed { get; init; }

    /// <inheritdoc/>
    public override string ToString() => Phase switch
    {
        TrainingPhase.Step => FormattableString.Invariant($"epoch {Epoch + 1}/{Epochs} step {Step}/{TotalSteps} loss {Loss:F4} lr {LearningRate:E3} grad-norm {GradientNorm:F3} ({Elapsed.TotalSeconds:F1} s)"),
        TrainingPhase.Validation => FormattableString.Invariant($"epoch {Epoch + 1}/{Epochs} train loss {Loss:F4}") +
            (ValidationLoss is { } vl ? FormattableString.Invariant($" validation loss {vl:F4} accuracy {ValidationAccuracy:F4}") : ""),
        TrainingPhase.Checkpoint => $"checkpoint at step {Step}: {CheckpointPath}",
        TrainingPhase.Resumed => $"resumed at step {Step} (epoch {Epoch + 1}) from {CheckpointPath}",
        _ => FormattableString.Invariant($"finished after {Step} steps in {Elapsed.TotalSeconds:F1} s"),
    };
}
