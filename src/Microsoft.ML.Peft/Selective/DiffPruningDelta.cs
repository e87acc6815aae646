using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// Diff pruning (Guo et al., 2021): a dense learned difference δ = w ⊙ z, with z hard-concrete gates whose relaxed L0
/// penalty pushes δ towards sparsity during training; at the end (<see cref="FinalizeDelta"/>, which merging calls) δ is
/// magnitude-pruned to its target count and fixed, so the merged weight is W + δ with at most that many changed entries.
/// Parameters: "weight" [out, in] (init 0) and "log_alpha" [out, in] (init <c>init_log_alpha</c>).
/// </summary>
public sealed class DiffPruningDelta : WeightDelta
{
    /// <summary>log α after finalising: σ(20)·(ζ − γ) + γ ≥ 1 for any valid stretch, so every kept gate is exactly 1.</summary>
    private const float OpenGate = 20f;

    private readonly HardConcreteSettings settings;
    private readonly float penalty;
    private readonly int keepCount;
    private readonly Generator generator;

    internal DiffPruningDelta(int outFeatures, int inFeatures, DiffPruningConfig config, Generator generator)
    {
        settings = new HardConcreteSettings((float)config.Beta, (float)config.LimitLeft, (float)config.LimitRight);
        penalty = (float)config.L0Penalty;
        keepCount = Math.Max(1, (int)Math.Ceiling(config.KeepFraction * outFeatures * inFeatures));
        this.generator = generator;
        using (TensorScope.Untracked())
        {
            RegisterParameter("weight", Tensor.Zeros(outFeatures, inFeatures));
            RegisterParameter("log_alpha", Tensor.Full((float)config.InitLogAlpha, outFeatures, inFeatures));
        }
    }

    /// <summary>w [out, in].</summary>
    public Tensor Weight => GetParameter("weight");

    /// <summary>log α [out, in].</summary>
    public Tensor LogAlpha => GetParameter("log_alpha");

    /// <summary>How many entries of δ survive <see cref="FinalizeDelta"/> (⌈keep_fraction·out·in⌉, at least 1).</summary>
    public int KeepCount => keepCount;

    /// <summary>The expected number of non-zero gates, Σ σ(log α − β·log(−γ/ζ)) (the L0 penalty without λ).</summary>
    public double ExpectedNonZero() => HardConcreteGate.ExpectedNonZero(LogAlpha, settings);

    /// <summary>The gates: stochastic in training mode, deterministic in evaluation mode.</summary>
    public Tensor Gates()
    {
        var noise = IsTraining ? Tensor.Empty(LogAlpha.ShapeArray()).Uniform_(generator, 1e-6f, 1f - 1e-6f) : null;
        return HardConcreteGate.Apply(LogAlpha, noise, settings, penalty);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return input.Linear(Weight.Mul(Gates()));
    }

    /// <inheritdoc/>
    public override Tensor DenseWeight()
    {
        using (Autograd.NoGrad()) return Weight.Mul(HardConcreteGate.Apply(LogAlpha, null, settings, 0f));
    }

    /// <summary>
    /// Magnitude-prunes the deterministic δ = w ⊙ z to <see cref="KeepCount"/> entries (ties by position) and fixes
    /// it: w holds the kept values, zero elsewhere, and every gate is opened to exactly 1.
    /// </summary>
    public override void FinalizeDelta()
    {
        using (Autograd.NoGrad())
        using (TensorScope.Untracked())
        {
            var delta = DenseWeight().ToArray();
            var keep = Enumerable.Range(0, delta.Length).OrderByDescending(i => Math.Abs(delta[i])).ThenBy(i => i).Take(keepCount).ToHashSet();
            var w = Weight.AsSpan<float>();
            for (int i = 0; i < delta.Length; i++) w[i] = keep.Contains(i) ? delta[i] : 0f;
            LogAlpha.Fill_(OpenGate);
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> SavedTensors() => [("weight", Weight), ("log_alpha", LogAlpha)];
}
