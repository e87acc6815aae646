namespace Microsoft.ML.Peft.Ensembles;

/// <summary>Settings of <see cref="SvgdLora"/>.</summary>
public sealed class SvgdOptions
{
    /// <summary>Number of LoRA particles n. Default 4.</summary>
    public int Particles { get; set; } = 4;

    /// <summary>
    /// Training-set size N: the log-likelihood is −N·(mean loss), which sets the strength of the repulsion (T/N)
    /// relative to the loss gradient. Required when particles interact (n &gt; 1 and <see cref="Repulsive"/>).
    /// </summary>
    public long DataCount { get; set; }

    /// <summary>Posterior temperature T (log p = −(N/T)·L); above 1 widens the ensemble. Default 1.</summary>
    public double Temperature { get; set; } = 1;

    /// <summary>Fixed RBF bandwidth H in k = exp(−‖a−b‖²/H); null uses the median heuristic. Default null.</summary>
    public double? Bandwidth { get; set; }

    /// <summary>
    /// True: Stein variational gradient descent. False: each particle follows its own loss gradient (a deep ensemble
    /// of independently initialised LoRA adapters, the usual baseline). Default true.
    /// </summary>
    public bool Repulsive { get; set; } = true;

    /// <summary>Throws naming the setting at fault.</summary>
    public void Validate()
    {
        if (Particles < 1) throw new ArgumentOutOfRangeException(nameof(Particles), Particles, "at least one particle is needed");
        if (!(Temperature > 0)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "the temperature must be positive");
        if (Repulsive && Particles > 1 && DataCount < 1)
            throw new ArgumentOutOfRangeException(nameof(DataCount), DataCount, "SVGD needs the training-set size N (DataCount) to weigh the repulsion against the likelihood");
        if (Bandwidth is { } h && !(h > 0)) throw new ArgumentOutOfRangeException(nameof(Bandwidth), h, "the bandwidth must be positive");
    }
}
