namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Laplace approximation of the log marginal likelihood (evidence) of a block-diagonal posterior, laplace-torch's
/// <c>log_marginal_likelihood</c>:
/// log p(D) ≈ log p(D|θ*) − ½·Σ_b [λ_b·‖θ*_b − θ₀_b‖² − d_b·log λ_b + log det P_b(λ_b)],
/// i.e. log-likelihood − ½(log det P_post − log det P₀ + scatter) with P₀ = λI; the (2π)^d terms cancel.
/// </summary>
/// <remarks>
/// The log-likelihood at the MAP is supplied by the caller: for classification the negative summed cross-entropy
/// over the training data (divided by a temperature if one is used), exactly laplace-torch's <c>-loss</c>. It does
/// not depend on λ, so it shifts the value but not the optimal prior precision.
/// </remarks>
public static class LaplaceMarginalLikelihood
{
    /// <summary>The evidence with each block at its own <see cref="ILaplacePosteriorBlock.PriorPrecision"/>.</summary>
    public static double Evaluate(double logLikelihood, IReadOnlyList<ILaplacePosteriorBlock> blocks)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        var precisions = new double[blocks.Count];
        for (int b = 0; b < precisions.Length; b++) precisions[b] = blocks[b].PriorPrecision;
        return Evaluate(logLikelihood, blocks, precisions);
    }

    /// <summary>The evidence with one prior precision λ shared by all blocks (laplace-torch's scalar prior).</summary>
    public static double Evaluate(double logLikelihood, IReadOnlyList<ILaplacePosteriorBlock> blocks, double priorPrecision)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        var precisions = new double[blocks.Count];
        Array.Fill(precisions, priorPrecision);
        return Evaluate(logLikelihood, blocks, precisions);
    }

    /// <summary>The evidence with one prior precision per block (laplace-torch's layer-wise prior).</summary>
    public static double Evaluate(double logLikelihood, IReadOnlyList<ILaplacePosteriorBlock> blocks, ReadOnlySpan<double> priorPrecisions)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (priorPrecisions.Length != blocks.Count)
            throw new ArgumentException($"Got {priorPrecisions.Length} prior precisions for {blocks.Count} blocks.", nameof(priorPrecisions));
        if (!double.IsFinite(logLikelihood)) throw new ArgumentOutOfRangeException(nameof(logLikelihood), logLikelihood, "The log-likelihood must be finite.");
        double value = logLikelihood;
        for (int b = 0; b < blocks.Count; b++) value += BlockTerm(blocks[b], priorPrecisions[b]);
        return value;
    }

    /// <summary>−½[λ·s − d·log λ + log det P(λ)]: one block's contribution (everything except the log-likelihood).</summary>
    public static double BlockTerm(ILaplacePosteriorBlock block, double priorPrecision)
    {
        ArgumentNullException.ThrowIfNull(block);
        PrecisionSpectrumTerms terms = block.SpectrumTerms(priorPrecision);
        return -0.5 * (priorPrecision * block.ScatterFromPriorMean - block.ParameterCount * Math.Log(priorPrecision) + terms.LogDeterminant);
    }

    /// <summary>
    /// First and second derivatives of <see cref="BlockTerm"/> with respect to u = log λ:
    /// f′ = ½[d − λ·s − λ·tr P⁻¹] = ½[γ − λ·s] with γ = Σ_k h_k/(h_k + λ), and
    /// f″ = −½[λ·s + Σ_k λ·h_k/(h_k + λ)²] &lt; 0 (for s &gt; 0), so the evidence is strictly concave in log λ and has
    /// one maximiser, where λ·‖θ*−θ₀‖² = γ (MacKay's condition).
    /// </summary>
    public static (double First, double Second) BlockTermDerivatives(ILaplacePosteriorBlock block, double priorPrecision)
    {
        ArgumentNullException.ThrowIfNull(block);
        PrecisionSpectrumTerms terms = block.SpectrumTerms(priorPrecision);
        double lambda = priorPrecision, s = block.ScatterFromPriorMean;
        double first = 0.5 * (terms.EffectiveParameters - lambda * s);
        double second = -0.5 * (lambda * s + terms.EffectiveParametersDecay);
        return (first, second);
    }
}
