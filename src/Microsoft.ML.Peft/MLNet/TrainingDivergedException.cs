namespace Microsoft.ML.Peft;

/// <summary>
/// Training produced a non-finite loss or gradient. No optimizer step was applied with it; the last checkpoint (if
/// checkpointing is on) holds the last good state.
/// </summary>
public sealed class TrainingDivergedException : Exception
{
    /// <summary>Creates the exception.</summary>
    public TrainingDivergedException()
    {
    }

    /// <summary>Creates the exception with a message.</summary>
    public TrainingDivergedException(string message)
        : base(message)
    {
    }

    /// <summary>Creates the exception with a message and cause.</summary>
    public TrainingDivergedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>The optimizer step (1-based) that failed.</summary>
    public int Step { get; init; }

    /// <summary>The last checkpoint written before the failure, or null.</summary>
    public string? LastCheckpoint { get; init; }
}
