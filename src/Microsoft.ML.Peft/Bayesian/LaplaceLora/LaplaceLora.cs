using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Laplace-LoRA (Yang et al. 2024): a Gaussian posterior N(θ*, P⁻¹) over the LoRA A and B matrices of a trained
/// <see cref="PeftModel"/>, with P = (N/T)·C + λI per matrix (C the mean per-example Fisher in K-FAC, diagonal or
/// last-layer form), its log marginal likelihood, prior-precision tuning, and the linearised (GLM) and sampling
/// predictives of a classifier.
/// </summary>
/// <remarks>
/// <para>The model is reached through a logits function (batch input → logits [B, C]) that runs the PEFT model; the
/// model must be in evaluation mode (no dropout) so each input's forward is deterministic.</para>
/// <para>Curvature: each LoRA layer is temporarily replaced by a probed layer (<see cref="ProbedLoraLayer"/>) whose
/// adapter branch is one autograd node that keeps the inputs of A and B and derives both output gradients from
/// ∂L/∂(layer output) in its backward. One backward of the SUM of the
/// batch's losses gives every example's own output gradient as its rows, because examples do not interact in the
/// forward (no batch norm); the Fisher's per-example outer products are then formed from those rows.</para>
/// <para>Token convention (a matrix applied at T positions per example): K-FAC-expand (Eschenhagen et al. 2023, as
/// ASDL/laplace-torch treat weight-shared layers): A = Σ_{n,t} x xᵀ/(N·T), G = Σ_{n,t} g gᵀ/N, precision N·G ⊗ A. With
/// T = 1 and one example this is the exact Fisher of that example. Diagonal curvature uses the exact per-example
/// gradient Σ_t g_t x_tᵀ.</para>
/// </remarks>
public sealed partial class LaplaceLora : IDisposable
{
    private readonly PeftModel model;
    private readonly Func<Tensor, Tensor> logitsFunction;
    private readonly LoraProbeSet probes;
    private readonly List<ProbedMatrix> posteriorMatrices;
    private readonly ILaplacePosteriorBlock[] blocks;

    private LaplaceLora(PeftModel model, Func<Tensor, Tensor> logitsFunction, LoraProbeSet probes, List<ProbedMatrix> matrices,
        ILaplacePosteriorBlock[] blocks, int dataCount, int classes, double logLikelihood, LaplaceLoraOptions options)
    {
        this.model = model;
        this.logitsFunction = logitsFunction;
        this.probes = probes;
        posteriorMatrices = matrices;
        this.blocks = blocks;
        DataCount = dataCount;
        Classes = classes;
        TrainLogLikelihood = logLikelihood;
        Temperature = options.Temperature;
        Options = options;
    }

    /// <summary>The options the posterior was fitted with.</summary>
    internal LaplaceLoraOptions Options { get; }

    /// <summary>One posterior block per LoRA matrix under the posterior, named by module path (e.g. "q.lora_A.default").</summary>
    public IReadOnlyList<ILaplacePosteriorBlock> Blocks => blocks;

    /// <summary>Training examples N seen while fitting.</summary>
    public int DataCount { get; }

    /// <summary>Posterior temperature T the curvature and likelihood were divided by.</summary>
    public double Temperature { get; }

    /// <summary>Number of classes C.</summary>
    public int Classes { get; }

    /// <summary>Σ_n log p(y_n | x_n, θ*) over the training data at the MAP (true labels; temperature not applied).</summary>
    public double TrainLogLikelihood { get; }

    /// <summary>Current prior precision of each block.</summary>
    public double[] PriorPrecisions => blocks.Select(b => b.PriorPrecision).ToArray();

    /// <summary>
    /// Fits the posterior: one pass over <paramref name="batches"/> gathering the Fisher of the active LoRA matrices
    /// (K-FAC factors or diagonal) and the MAP log-likelihood. The returned object keeps the recording layers installed
    /// in the model until disposed (they compute exactly what the originals compute).
    /// </summary>
    /// <exception cref="InvalidOperationException">No active LoRA layer, a merged adapter, or a non-finite curvature (names the matrix).</exception>
    /// <exception cref="ArgumentException">Labels out of range, logits of the wrong shape, no data.</exception>
    public static LaplaceLora Fit(PeftModel model, Func<Tensor, Tensor> logitsFunction, IEnumerable<LaplaceBatch> batches, LaplaceLoraOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(logitsFunction);
        ArgumentNullException.ThrowIfNull(batches);
        options ??= new LaplaceLoraOptions();
        if (!(options.Temperature > 0) || !double.IsFinite(options.Temperature))
            throw new ArgumentOutOfRangeException(nameof(options), options.Temperature, "Laplace-LoRA: temperature must be positive and finite");
        RequirePositive(options.PriorPrecision, "initial prior precision");
        if (model.Model.IsTraining)
            throw new InvalidOperationException("Laplace-LoRA: the model is in training mode (dropout active); call model.Model.Eval() first");

        var probes = new LoraProbeSet(model, options.HeadModules);
        try
        {
            var matrices = options.Curvature == CurvatureKind.LastLayer ? [probes.Matrices[^1]] : probes.Matrices.ToList();
            probes.Recorded = matrices;
            var collector = new FisherCollector(matrices, options);
            foreach (var batch in batches) collector.Add(probes, logitsFunction, batch);
            var built = collector.BuildBlocks(options.Curvature, options.Temperature);
            foreach (var b in built) b.PriorPrecision = options.PriorPrecision;
            return new LaplaceLora(model, logitsFunction, probes, matrices, built, collector.Examples, collector.Classes, collector.LogLikelihood, options);
        }
        catch
        {
            probes.Dispose();
            throw;
        }
    }

    /// <summary>Sets one prior precision λ &gt; 0 for every block.</summary>
    public void SetPriorPrecision(double priorPrecision)
    {
        RequirePositive(priorPrecision, "prior precision");
        foreach (var b in blocks) b.PriorPrecision = priorPrecision;
    }

    /// <summary>Sets one prior precision per block (order of <see cref="Blocks"/>).</summary>
    public void SetPriorPrecisions(ReadOnlySpan<double> priorPrecisions)
    {
        if (priorPrecisions.Length != blocks.Length)
            throw new ArgumentException($"Laplace-LoRA: {priorPrecisions.Length} prior precisions for {blocks.Length} blocks", nameof(priorPrecisions));
        for (int i = 0; i < blocks.Length; i++) RequirePositive(priorPrecisions[i], $"prior precision of '{blocks[i].Name}'");
        for (int i = 0; i < blocks.Length; i++) blocks[i].PriorPrecision = priorPrecisions[i];
    }

    /// <summary>
    /// log p(D) ≈ log p(D|θ*) − ½Σ_b[λ_b‖θ*_b‖² − d_b log λ_b + log det P_b] at the current prior precisions
    /// (laplace-torch's log_marginal_likelihood; the likelihood term scaled by 1/T like the curvature).
    /// </summary>
    public double LogMarginalLikelihood() => LaplaceMarginalLikelihood.Evaluate(ScaledLogLikelihood, blocks);

    /// <summary>Maximises the evidence over λ (scalar or per block, per <paramref name="options"/>), applies and returns it.</summary>
    public double[] OptimizePriorPrecision(PriorPrecisionOptions? options = null)
    {
        var lambdas = PriorPrecisionOptimizer.MaximizeEvidence(blocks, options);
        SetPriorPrecisions(lambdas);
        return lambdas;
    }

    /// <summary>
    /// Chooses a scalar λ on a log10 grid by the validation negative log-likelihood of the probit linearised predictive
    /// (laplace-torch's gridsearch); Jacobians are computed once. Applies and returns λ.
    /// </summary>
    public double TunePriorPrecisionByValidation(IEnumerable<LaplaceBatch> validation, double log10Min = -4, double log10Max = 4, int gridSize = 41)
    {
        ArgumentNullException.ThrowIfNull(validation);
        var cached = new List<(double[][] Jacobians, double[] Means, int[] Labels)>();
        foreach (var batch in validation)
        {
            var jacobians = Jacobians(batch.Input, out var means);
            if (batch.Labels.Length != means.Length / Classes)
                throw new ArgumentException($"Laplace-LoRA: validation batch has {batch.Labels.Length} labels for {means.Length / Classes} examples");
            cached.Add((jacobians, means, batch.Labels));
        }
        if (cached.Count == 0) throw new ArgumentException("Laplace-LoRA: the validation set is empty", nameof(validation));
        double Nll(double lambda)
        {
            SetPriorPrecision(lambda);
            double nll = 0;
            foreach (var (jac, means, labels) in cached)
            {
                var probs = ProbitProbabilities(Combine(jac, means));
                for (int n = 0; n < labels.Length; n++) nll -= Math.Log(Math.Max(probs[n * Classes + CheckLabel(labels[n], Classes, n)], 1e-300));
            }
            return nll;
        }
        double best = PriorPrecisionOptimizer.GridSearch(Nll, log10Min, log10Max, gridSize);
        SetPriorPrecision(best);
        return best;
    }

    /// <summary>Removes the recording layers: the model holds its original LoRA sub-layers again.</summary>
    public void Dispose() => probes.Dispose();

    private double ScaledLogLikelihood => TrainLogLikelihood / Temperature;

    internal static int CheckLabel(int label, int classes, int row) =>
        label >= 0 && label < classes ? label : throw new ArgumentException($"Laplace-LoRA: label {label} of example {row} is outside [0, {classes})");

    private static void RequirePositive(double value, string what)
    {
        if (!(value > 0) || !double.IsFinite(value)) throw new ArgumentOutOfRangeException(nameof(value), value, $"Laplace-LoRA: {what} must be positive and finite");
    }
}
