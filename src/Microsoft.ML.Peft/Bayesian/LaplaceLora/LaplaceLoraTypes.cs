using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>Curvature structure of the Laplace posterior over the LoRA weights.</summary>
public enum CurvatureKind
{
    /// <summary>One Kronecker-factored block G ⊗ A per LoRA matrix (Laplace-LoRA's choice).</summary>
    Kfac,

    /// <summary>Diagonal of the Fisher per LoRA matrix, accumulated exactly from per-example gradients.</summary>
    Diagonal,

    /// <summary>K-FAC on the last LoRA matrix only (in module order); every other LoRA matrix stays at its MAP value.</summary>
    LastLayer,
}

/// <summary>Which labels the Fisher's output gradients use.</summary>
public enum FisherKind
{
    /// <summary>Labels drawn from the model's own predictive softmax (seeded): an unbiased one-sample estimate of the GGN.</summary>
    Sampled,

    /// <summary>The true labels (empirical Fisher).</summary>
    Empirical,

    /// <summary>
    /// The exact Fisher (= GGN for softmax cross-entropy), the expectation the sampled Fisher estimates, with no sampling
    /// noise: per example Jᵀ(diag p − p pᵀ)J = Σ_c p_c (e_c − p)(e_c − p)ᵀ pulled back through the network. Two classes
    /// need ONE backward pass, since diag p − p pᵀ = p₀p₁·d dᵀ with d = (−1, 1): the seed √(p₀p₁)·d per row. C &gt; 2
    /// classes take C backward passes (seeds √p_c·(e_c − p)).
    /// </summary>
    Exact,
}

/// <summary>Settings of <see cref="LaplaceLora.Fit"/>.</summary>
public sealed record LaplaceLoraOptions
{
    /// <summary>Curvature structure (default K-FAC).</summary>
    public CurvatureKind Curvature { get; init; } = CurvatureKind.Kfac;

    /// <summary>Fisher type (default sampled labels).</summary>
    public FisherKind Fisher { get; init; } = FisherKind.Sampled;

    /// <summary>Seed of the sampled labels.</summary>
    public long Seed { get; init; }

    /// <summary>K-FAC factor sides at least this large are kept low rank (bayesian_lora; default 512).</summary>
    public int LowRankThreshold { get; init; } = 512;

    /// <summary>Rank of a low-rank factor (default 10).</summary>
    public int LowRankRank { get; init; } = 10;

    /// <summary>Posterior temperature T: the likelihood counts N/T examples (default 1).</summary>
    public double Temperature { get; init; } = 1;

    /// <summary>
    /// Module paths of plain <see cref="NN.Linear"/> heads (e.g. "classifier") that get a posterior block over [W | b]
    /// too, after the LoRA matrices (so <see cref="CurvatureKind.LastLayer"/> then means the last head). Default none.
    /// </summary>
    public IReadOnlyList<string> HeadModules { get; init; } = [];

    /// <summary>Initial prior precision λ (all blocks; default 1).</summary>
    public double PriorPrecision { get; init; } = 1;
}

/// <summary>One batch: model input and the true class of each example (needed for the MAP log-likelihood).</summary>
/// <param name="Input">Whatever the logits function takes, e.g. [B, features] or token ids [B, T].</param>
/// <param name="Labels">B class indices.</param>
public sealed record LaplaceBatch(Tensor Input, int[] Labels)
{
    /// <summary>
    /// Padding mask of a token batch, B×T row-major (1 = real token, 0 = padding), or null when nothing is padded. A LoRA
    /// matrix applied at T positions per example then gathers its K-FAC rows from the real tokens only, so the factors do
    /// not depend on how examples are batched and padded.
    /// </summary>
    public int[]? PositionMask { get; init; }
}

/// <summary>Linearised predictive of a batch: logit means (B×C, the MAP logits) and covariances (B×C×C).</summary>
/// <param name="BatchSize">B.</param>
/// <param name="Classes">C.</param>
/// <param name="Means">B×C MAP logits, row-major.</param>
/// <param name="Covariances">B blocks of C×C: Σ_b = Σ_l J_l Σ_l J_lᵀ.</param>
public sealed record LinearizedLogits(int BatchSize, int Classes, double[] Means, double[] Covariances);
