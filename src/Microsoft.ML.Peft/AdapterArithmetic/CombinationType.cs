namespace Microsoft.ML.Peft.AdapterArithmetic;

/// <summary>
/// How <see cref="WeightedAdapters.AddWeightedAdapter"/> combines LoRA adapters (PEFT's <c>combination_type</c>).
/// </summary>
/// <remarks>
/// The "matrix" types (<see cref="Linear"/>, <see cref="Ties"/>, <see cref="DareLinear"/>, <see cref="DareTies"/>,
/// <see cref="MagnitudePrune"/>) combine the A matrices and the B matrices separately, each adapter weighted by
/// √(wᵢ·scalingᵢ), as PEFT does: cheap and rank-preserving, but (Σ√wᵢBᵢ)(Σ√wᵢAᵢ) has cross terms BᵢAⱼ, so it is
/// not Σ wᵢΔᵢ unless a single adapter is involved. <see cref="Cat"/> is exact (rank Σ rᵢ). The "…Svd" types combine
/// the full deltas Δᵢ = scalingᵢ·BᵢAᵢ and re-factorise the result by a truncated SVD to the new rank (the best
/// rank-r approximation, Eckart–Young).
/// </remarks>
public enum CombinationType
{
    /// <summary>"svd": Σ wᵢΔᵢ, re-factorised.</summary>
    Svd,

    /// <summary>"linear": A = Σ√(wᵢsᵢ)Aᵢ, B = Σ√(wᵢsᵢ)Bᵢ; equal ranks, non-negative weights.</summary>
    Linear,

    /// <summary>"cat": A = [w₁s₁A₁; w₂s₂A₂; …], B = [B₁ B₂ …]; rank Σ rᵢ; exactly Σ wᵢΔᵢ.</summary>
    Cat,

    /// <summary>"ties": TIES on the A and on the B matrices.</summary>
    Ties,

    /// <summary>"ties_svd": TIES on the deltas, re-factorised.</summary>
    TiesSvd,

    /// <summary>"dare_linear": DARE then weighted sum, on A and B.</summary>
    DareLinear,

    /// <summary>"dare_ties": DARE then TIES' disjoint merge, on A and B.</summary>
    DareTies,

    /// <summary>"dare_linear_svd": DARE then weighted sum of the deltas, re-factorised.</summary>
    DareLinearSvd,

    /// <summary>"dare_ties_svd": DARE then TIES' disjoint merge of the deltas, re-factorised.</summary>
    DareTiesSvd,

    /// <summary>"magnitude_prune": magnitude pruning then weighted sum, on A and B.</summary>
    MagnitudePrune,

    /// <summary>"magnitude_prune_svd": magnitude pruning then weighted sum of the deltas, re-factorised.</summary>
    MagnitudePruneSvd,
}

/// <summary>Settings of <see cref="WeightedAdapters.AddWeightedAdapter"/> beyond the combination type (PEFT's names).</summary>
public sealed class WeightedAdapterOptions
{
    /// <summary>Combination type. Default <see cref="CombinationType.Svd"/> (PEFT's default).</summary>
    public CombinationType CombinationType { get; set; } = CombinationType.Svd;

    /// <summary>svd_rank: rank of an SVD-combined adapter; null = the largest source rank.</summary>
    public int? SvdRank { get; set; }

    /// <summary>svd_clamp: quantile q in (0, 1] of the factors' entries at which they are clamped to [−x_q, x_q]; null = no clamping.</summary>
    public double? SvdClamp { get; set; }

    /// <summary>density: fraction of values kept by TIES/DARE/magnitude pruning (required by those types).</summary>
    public double? Density { get; set; }

    /// <summary>majority_sign_method of TIES. Default <see cref="MajoritySignMethod.Total"/>.</summary>
    public MajoritySignMethod MajoritySignMethod { get; set; } = MajoritySignMethod.Total;

    /// <summary>Seed of DARE's random masks. Default 0.</summary>
    public ulong Seed { get; set; }

    internal bool IsSvd => CombinationType is CombinationType.Svd or CombinationType.TiesSvd or CombinationType.DareLinearSvd
        or CombinationType.DareTiesSvd or CombinationType.MagnitudePruneSvd;

    internal bool NeedsDensity => CombinationType is not (CombinationType.Svd or CombinationType.Linear or CombinationType.Cat);
}
