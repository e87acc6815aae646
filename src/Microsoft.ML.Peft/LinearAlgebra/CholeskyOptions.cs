namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Jitter-retry policy for <see cref="CholeskyFactor.Compute(ReadOnlySpan{double}, int, string, CholeskyOptions?)"/>.
/// </summary>
/// <remarks>
/// When the plain factorisation fails, the matrix is retried as A + δ·I with
/// δ = <see cref="InitialRelativeJitter"/> · mean(|diag A|), multiplying δ by <see cref="JitterGrowthFactor"/> after
/// each failure, for at most <see cref="MaxJitterRetries"/> retries (the scheme of GPyTorch's <c>psd_safe_cholesky</c>
/// and, with growth 1.1 and many tries, of bayesian_lora's <c>stable_cholesky</c>). Scaling by the mean diagonal makes
/// the jitter meaningful whatever the matrix's units are. The jitter actually used is reported on the factor.
/// </remarks>
public sealed record CholeskyOptions
{
    /// <summary>No retries: a non-SPD matrix throws at once. The default.</summary>
    public static CholeskyOptions Strict { get; } = new();

    /// <summary>Up to 6 retries starting at 1e-10 · mean diagonal and growing ×10 (last try 1e-5 · mean diagonal).</summary>
    public static CholeskyOptions WithJitter { get; } = new() { MaxJitterRetries = 6 };

    /// <summary>How many jittered retries to attempt after the plain factorisation fails (0 = none).</summary>
    public int MaxJitterRetries { get; init; }

    /// <summary>First jitter as a fraction of the mean absolute diagonal.</summary>
    public double InitialRelativeJitter { get; init; } = 1e-10;

    /// <summary>Factor applied to the jitter after each failed retry (&gt; 1).</summary>
    public double JitterGrowthFactor { get; init; } = 10;
}
