using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// One block of a block-diagonal Laplace posterior N(θ*, P⁻¹) with P = H + λ·I: a K-FAC layer, a diagonal block or a
/// small full block. The marginal likelihood and prior-precision optimisation need only what is declared here.
/// </summary>
/// <remarks>
/// H is the block's curvature (data count × mean per-example Fisher/GGN), λ its isotropic prior precision
/// (prior N(θ₀, λ⁻¹I)). Everything λ-dependent comes from H's spectrum {h_k}: log det P = Σ log(h_k + λ).
/// Blocks are independent, so for a model made of several blocks the linearised predictive covariance of its
/// outputs is Σ_b J_b·Σ_b·J_bᵀ (one <see cref="ProjectedCovariance"/> per block) and a posterior draw is one
/// <see cref="Sample"/> per block. The covariance operations use the current <see cref="PriorPrecision"/>.
/// </remarks>
public interface ILaplacePosteriorBlock
{
    /// <summary>Name used in error messages and reports (e.g. the module path).</summary>
    string Name { get; }

    /// <summary>Number of parameters d in the block.</summary>
    int ParameterCount { get; }

    /// <summary>Prior precision λ &gt; 0 used by covariance products and sampling (default 1, laplace-torch's default).</summary>
    double PriorPrecision { get; set; }

    /// <summary>‖θ* − θ₀‖², the squared distance of the MAP from the prior mean.</summary>
    double ScatterFromPriorMean { get; }

    /// <summary>The MAP θ* (length <see cref="ParameterCount"/>; for a K-FAC layer W* flattened row-major).</summary>
    ReadOnlySpan<double> Mean { get; }

    /// <summary>log det P and the effective-parameter terms at prior precision <paramref name="priorPrecision"/>.</summary>
    PrecisionSpectrumTerms SpectrumTerms(double priorPrecision);

    /// <summary>result = Σ·v with Σ = P⁻¹ (both of length <see cref="ParameterCount"/>).</summary>
    void CovarianceTimes(ReadOnlySpan<double> v, Span<double> result);

    /// <summary>J·Σ·Jᵀ (rows×rows, row-major) for a Jacobian J (rows×d, row-major) of outputs with respect to this block.</summary>
    double[] ProjectedCovariance(ReadOnlySpan<double> jacobian, int rows);

    /// <summary>Writes one draw θ ~ N(θ*, Σ) into <paramref name="destination"/>.</summary>
    void Sample(GaussianRandom random, Span<double> destination);
}

/// <summary>
/// Spectral quantities of a posterior precision P(λ) = H + λI over H's eigenvalues {h_k}:
/// <see cref="LogDeterminant"/> = Σ log(h_k + λ); <see cref="EffectiveParameters"/> γ = Σ h_k/(h_k + λ) (MacKay's
/// effective number of well-determined parameters, = d − λ·tr P⁻¹); <see cref="EffectiveParametersDecay"/>
/// κ = Σ λ·h_k/(h_k + λ)² = −dγ/d(log λ) ≥ 0.
/// </summary>
/// <remarks>γ and κ are summed term by term rather than derived from traces, which would cancel catastrophically
/// when most h_k are 0 (a low-rank K-FAC layer has thousands).</remarks>
public readonly record struct PrecisionSpectrumTerms(double LogDeterminant, double EffectiveParameters, double EffectiveParametersDecay)
{
    /// <summary>Terms of the eigenvalue multiset {h_k} plus <paramref name="zeroCount"/> zero eigenvalues, at λ.</summary>
    internal static PrecisionSpectrumTerms FromSpectrum(ReadOnlySpan<double> curvatureEigenvalues, long zeroCount, double priorPrecision, string blockName)
    {
        CheckPriorPrecision(priorPrecision, blockName);
        double lambda = priorPrecision, logDet = zeroCount * Math.Log(lambda), gamma = 0, kappa = 0;
        foreach (double h in curvatureEigenvalues)
        {
            double p = h + lambda;
            logDet += Math.Log(p);
            gamma += h / p;
            kappa += lambda * h / (p * p);
        }
        return new PrecisionSpectrumTerms(logDet, gamma, kappa);
    }

    internal static void CheckPriorPrecision(double priorPrecision, string blockName)
    {
        if (!(priorPrecision > 0) || !double.IsFinite(priorPrecision))
            throw new ArgumentOutOfRangeException(nameof(priorPrecision), priorPrecision, $"Prior precision of '{blockName}' must be positive and finite.");
    }
}
