namespace Microsoft.ML.Peft.Bayesian;

/// <summary>Phases of a Laplace-LoRA fit or prediction whose cost <see cref="LaplacePhaseTimer"/> accumulates.</summary>
internal enum LaplacePhase
{
    /// <summary>Reading the labeled rows out of the input data view.</summary>
    ReadData,

    /// <summary>Tokenising and collating rows into batches.</summary>
    Encode,

    /// <summary>Forward passes through the probed model (with the autograd graph).</summary>
    Forward,

    /// <summary>Backward passes seeded at the logits.</summary>
    Backward,

    /// <summary>Copying the probed inputs and output gradients out of the graph.</summary>
    Capture,

    /// <summary>K-FAC factor (or diagonal) accumulation.</summary>
    Factors,

    /// <summary>Eigendecompositions of the factors and block construction.</summary>
    Eigen,

    /// <summary>Prior-precision tuning (evidence or validation).</summary>
    PriorTuning,

    /// <summary>Per-example Jacobians and their projection through the posterior covariance.</summary>
    Variance,
}

/// <summary>
/// Opt-in cost profile of Laplace-LoRA by phase, for the benchmark: when <see cref="Clock"/> is set (e.g. the calling
/// thread's CPU clock), every phase adds the clock's advance to its total. Off (null clock) it costs one null check
/// per phase, so the hot paths carry no measurable overhead. Not thread safe: profile one fit at a time.
/// </summary>
internal static class LaplacePhaseTimer
{
    private static readonly double[] Totals = new double[Enum.GetValues<LaplacePhase>().Length];

    /// <summary>Seconds clock (monotone) used while profiling; null disables profiling.</summary>
    public static Func<double>? Clock { get; set; }

    /// <summary>Seconds accumulated per phase since the last <see cref="Reset"/>.</summary>
    public static double Seconds(LaplacePhase phase) => Totals[(int)phase];

    public static void Reset() => Array.Clear(Totals);

    /// <summary>Starts timing <paramref name="phase"/>; dispose the result to add the elapsed time.</summary>
    public static Scope Measure(LaplacePhase phase) => new(phase, Clock?.Invoke() ?? 0);

    /// <summary>Adds the clock's advance since construction to the phase's total on dispose.</summary>
    public readonly struct Scope(LaplacePhase phase, double start) : IDisposable
    {
        public void Dispose()
        {
            if (Clock is { } clock) Totals[(int)phase] += clock() - start;
        }
    }
}
