namespace Microsoft.ML.Peft.Bayesian;

/// <summary>Which prior precisions are tuned: one shared λ or one per block (laplace-torch's <c>prior_structure</c>).</summary>
public enum PriorPrecisionStructure
{
    /// <summary>One λ for all blocks ("scalar").</summary>
    Scalar,

    /// <summary>One λ per block ("layerwise").</summary>
    Layerwise,
}

/// <summary>How the evidence is maximised over log λ.</summary>
public enum EvidenceMaximizer
{
    /// <summary>Safeguarded Newton on log λ to machine precision (the evidence is concave in log λ).</summary>
    Newton,

    /// <summary>laplace-torch's <c>optimize_prior_precision(method='marglik')</c>: Adam on log λ for a fixed number of steps.</summary>
    Adam,
}

/// <summary>Options of <see cref="PriorPrecisionOptimizer.MaximizeEvidence"/>.</summary>
public sealed record PriorPrecisionOptions
{
    /// <summary>Scalar (default) or layer-wise.</summary>
    public PriorPrecisionStructure Structure { get; init; } = PriorPrecisionStructure.Scalar;

    /// <summary>Newton (default) or Adam.</summary>
    public EvidenceMaximizer Method { get; init; } = EvidenceMaximizer.Newton;

    /// <summary>Starting λ (laplace-torch's <c>init_prior_prec</c>, default 1).</summary>
    public double InitialPriorPrecision { get; init; } = 1;

    /// <summary>Lower bound on λ (Newton only); the result is clamped to [Min, Max] when the optimum lies outside.</summary>
    public double MinPriorPrecision { get; init; } = 1e-8;

    /// <summary>Upper bound on λ (Newton only).</summary>
    public double MaxPriorPrecision { get; init; } = 1e8;

    /// <summary>Adam steps (laplace-torch's <c>n_steps</c>, default 100).</summary>
    public int AdamSteps { get; init; } = 100;

    /// <summary>Adam learning rate on log λ (laplace-torch's <c>lr</c>, default 0.1).</summary>
    public double AdamLearningRate { get; init; } = 0.1;
}

/// <summary>
/// Tunes the prior precision λ of a Laplace posterior: by maximising the Laplace evidence
/// (<see cref="LaplaceMarginalLikelihood"/>), or by a validation-loss grid search.
/// </summary>
public static class PriorPrecisionOptimizer
{
    private const int MaxNewtonIterations = 200;

    /// <summary>
    /// Maximises the evidence over λ (shared or per block), sets each block's <see cref="ILaplacePosteriorBlock.PriorPrecision"/>
    /// to the result and returns the per-block values.
    /// </summary>
    /// <remarks>
    /// Because the posterior is block-diagonal, the layer-wise problem separates into one 1-D problem per block. Newton
    /// works on u = log λ, where the evidence is strictly concave (see
    /// <see cref="LaplaceMarginalLikelihood.BlockTermDerivatives"/>): it keeps a bracket on the root of the derivative
    /// and falls back to bisection whenever a Newton step would leave it, so it always converges, to |Δu| ≤ 1e-12. Adam
    /// reproduces laplace-torch (β = (0.9, 0.999), ε = 1e-8, unclamped); it stops after the given steps whether or
    /// not it has converged, as laplace-torch does.
    /// </remarks>
    public static double[] MaximizeEvidence(IReadOnlyList<ILaplacePosteriorBlock> blocks, PriorPrecisionOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(blocks);
        if (blocks.Count == 0) throw new ArgumentException("No posterior blocks given.", nameof(blocks));
        options ??= new PriorPrecisionOptions();
        Validate(options);
        var result = new double[blocks.Count];
        if (options.Structure == PriorPrecisionStructure.Scalar)
        {
            Array.Fill(result, Maximize(blocks, options));
        }
        else
        {
            for (int b = 0; b < blocks.Count; b++) result[b] = Maximize([blocks[b]], options);
        }
        for (int b = 0; b < blocks.Count; b++) blocks[b].PriorPrecision = result[b];
        return result;
    }

    /// <summary>
    /// laplace-torch's <c>method='gridsearch'</c>: evaluates <paramref name="validationLoss"/> (e.g. validation NLL of
    /// the predictive at that λ) on λ = 10^t for <paramref name="gridSize"/> values of t evenly spaced in
    /// [<paramref name="log10Min"/>, <paramref name="log10Max"/>] and returns the λ with the smallest loss (the first on
    /// ties; a NaN loss counts as +∞).
    /// </summary>
    public static double GridSearch(Func<double, double> validationLoss, double log10Min = -4, double log10Max = 4, int gridSize = 100)
    {
        ArgumentNullException.ThrowIfNull(validationLoss);
        ArgumentOutOfRangeException.ThrowIfLessThan(gridSize, 1);
        if (!(log10Max >= log10Min)) throw new ArgumentException($"Grid bounds [{log10Min}, {log10Max}] are empty.", nameof(log10Max));
        double best = double.NaN, bestLoss = double.PositiveInfinity;
        for (int i = 0; i < gridSize; i++)
        {
            double t = gridSize == 1 ? log10Min : log10Min + (log10Max - log10Min) * i / (gridSize - 1);
            double lambda = Math.Pow(10, t);
            double loss = validationLoss(lambda);
            if (double.IsNaN(loss)) loss = double.PositiveInfinity;
            if (double.IsNaN(best) || loss < bestLoss)
            {
                best = lambda;
                bestLoss = loss;
            }
        }
        return best;
    }

    private static double Maximize(IReadOnlyList<ILaplacePosteriorBlock> blocks, PriorPrecisionOptions options) =>
        options.Method == EvidenceMaximizer.Newton ? Newton(blocks, options) : Adam(blocks, options);

    private static (double First, double Second) Derivatives(IReadOnlyList<ILaplacePosteriorBlock> blocks, double u)
    {
        double first = 0, second = 0, lambda = Math.Exp(u);
        foreach (ILaplacePosteriorBlock block in blocks)
        {
            (double f, double s) = LaplaceMarginalLikelihood.BlockTermDerivatives(block, lambda);
            first += f;
            second += s;
        }
        return (first, second);
    }

    private static double Newton(IReadOnlyList<ILaplacePosteriorBlock> blocks, PriorPrecisionOptions options)
    {
        double lo = Math.Log(options.MinPriorPrecision), hi = Math.Log(options.MaxPriorPrecision);
        // Concave ⇒ the derivative decreases; an optimum outside the bounds is clamped to the nearer bound.
        if (Derivatives(blocks, lo).First <= 0) return options.MinPriorPrecision;
        if (Derivatives(blocks, hi).First >= 0) return options.MaxPriorPrecision;
        double u = Math.Clamp(Math.Log(options.InitialPriorPrecision), lo, hi);
        for (int iteration = 0; iteration < MaxNewtonIterations; iteration++)
        {
            (double first, double second) = Derivatives(blocks, u);
            if (first == 0) break;
            if (first > 0) lo = u;
            else hi = u;
            double next = second < 0 ? u - first / second : double.NaN;
            if (!(next > lo && next < hi)) next = 0.5 * (lo + hi); // Newton left the bracket: bisect
            bool converged = Math.Abs(next - u) <= 1e-12 * Math.Max(1, Math.Abs(u));
            u = next;
            if (converged || hi - lo <= 1e-14 * Math.Max(1, Math.Abs(u))) break;
        }
        return Math.Exp(u);
    }

    private static double Adam(IReadOnlyList<ILaplacePosteriorBlock> blocks, PriorPrecisionOptions options)
    {
        const double beta1 = 0.9, beta2 = 0.999, epsilon = 1e-8;
        double u = Math.Log(options.InitialPriorPrecision), m = 0, v = 0;
        for (int t = 1; t <= options.AdamSteps; t++)
        {
            double gradient = -Derivatives(blocks, u).First; // Adam minimises the negative evidence
            m = beta1 * m + (1 - beta1) * gradient;
            v = beta2 * v + (1 - beta2) * gradient * gradient;
            double mHat = m / (1 - Math.Pow(beta1, t)), vHat = v / (1 - Math.Pow(beta2, t));
            u -= options.AdamLearningRate * mHat / (Math.Sqrt(vHat) + epsilon);
        }
        return Math.Exp(u);
    }

    private static void Validate(PriorPrecisionOptions options)
    {
        if (!(options.InitialPriorPrecision > 0) || !(options.MinPriorPrecision > 0) || !(options.MaxPriorPrecision > options.MinPriorPrecision) || !double.IsFinite(options.MaxPriorPrecision))
            throw new ArgumentException("Prior precisions must satisfy 0 < Min < Max < ∞ and Initial > 0.", nameof(options));
        if (options.AdamSteps < 0) throw new ArgumentOutOfRangeException(nameof(options), options.AdamSteps, "Adam steps must be ≥ 0.");
        if (!(options.AdamLearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(options), options.AdamLearningRate, "Adam learning rate must be positive.");
    }
}
