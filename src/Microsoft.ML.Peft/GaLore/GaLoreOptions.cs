namespace Microsoft.ML.Peft.GaLore;

/// <summary>How a GaLore projector finds the top singular vectors of a gradient.</summary>
public enum GaLoreSvd
{
    /// <summary>Exact thin SVD (one-sided Jacobi); right for matrices up to about a thousand on the short side.</summary>
    Exact,

    /// <summary>Randomized range finding (Halko et al.) for the top r triplets only; much cheaper on large weights.</summary>
    Randomized,
}

/// <summary>
/// Settings of GaLore (Zhao et al. 2024, "GaLore: Memory-Efficient LLM Training by Gradient Low-Rank Projection").
/// Names follow the authors' <c>galore_torch</c> parameter groups: <c>rank</c>, <c>update_proj_gap</c>, <c>scale</c>.
/// </summary>
public sealed class GaLoreOptions
{
    /// <summary>Rank r of the projected gradient (galore_torch's <c>rank</c>). Default 128, the paper's 60M–1B setting.</summary>
    public int Rank { get; set; } = 128;

    /// <summary>Optimizer steps between projector refreshes, T (<c>update_proj_gap</c>). Default 200.</summary>
    public int UpdateProjectionGap { get; set; } = 200;

    /// <summary>Factor α on the projected-back update (<c>scale</c>). Default 0.25, the paper's value.</summary>
    public double Scale { get; set; } = 0.25;

    /// <summary>SVD used to refresh the projector. Default <see cref="GaLoreSvd.Exact"/>.</summary>
    public GaLoreSvd Svd { get; set; } = GaLoreSvd.Exact;

    /// <summary>
    /// Keep the Adam moments of projected and plain parameters 8-bit blockwise quantized (bitsandbytes' scheme, as in
    /// the paper's "8-bit GaLore"). Default false (fp32 moments).
    /// </summary>
    public bool EightBitState { get; set; }

    /// <summary>Seed of the randomized SVD's test matrix (unused by the exact SVD). Default 0.</summary>
    public long Seed { get; set; }

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> naming the setting at fault.</summary>
    public void Validate()
    {
        if (Rank < 1) throw new ArgumentOutOfRangeException(nameof(Rank), Rank, "GaLore rank must be at least 1");
        if (UpdateProjectionGap < 1) throw new ArgumentOutOfRangeException(nameof(UpdateProjectionGap), UpdateProjectionGap, "GaLore update_proj_gap must be at least 1");
        if (!(Scale > 0) || !double.IsFinite(Scale)) throw new ArgumentOutOfRangeException(nameof(Scale), Scale, "GaLore scale must be a positive finite number");
    }
}
