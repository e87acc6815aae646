using Microsoft.ML.Peft.LinearAlgebra;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

public sealed partial class LaplaceLora
{
    /// <summary>
    /// Linearised (GLM) predictive of a batch: logit means are the MAP logits; the covariance of example n is
    /// Σ_l J_{l,n} Σ_l J_{l,n}ᵀ with J_{l,n} (C × d_l) the Jacobian of its logits wrt LoRA matrix l.
    /// </summary>
    /// <remarks>
    /// J is built from C backward passes, pass c seeded with ∂(Σ_n f_{n,c})/∂f: each example's row of the recorded output
    /// gradient is then ∂f_{n,c}/∂(layer output) for that example alone, and Σ_t g_t x_tᵀ is row c of J_{l,n}. The
    /// projection uses the block's structure (<see cref="KfacLaplaceLayer.ProjectedCovariance"/> works in the Kronecker
    /// eigenbasis), so no d×d matrix is formed. Cost: C forward + backward passes per batch.
    /// </remarks>
    public LinearizedLogits PredictLinearized(Tensor input)
    {
        var jacobians = Jacobians(input, out var means);
        return Combine(jacobians, means);
    }

    /// <summary>
    /// Linearised predictive of one direction of the logits, u = dᵀf (the binary margin f₁ − f₀ for d = (−1, 1)): the
    /// MAP logits (B×C, in <paramref name="means"/>) and Var(u) = Σ_l (dᵀJ_l) Σ_l (dᵀJ_l)ᵀ per example, from ONE forward
    /// and ONE backward pass seeded with d in every row (the full covariance needs C of each).
    /// </summary>
    internal double[] DirectionalVariance(Tensor input, ReadOnlySpan<double> direction, out double[] means, int[]? positionMask = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        int batch = input.Rank > 0 ? input.Size(0) : 0;
        if (batch == 0) throw new ArgumentException($"Laplace-LoRA: input {input.ShapeString} has no examples");
        if (direction.Length != Classes) throw new ArgumentException($"Laplace-LoRA: a direction of {direction.Length} values for {Classes} classes", nameof(direction));
        var seedRow = new float[Classes];
        for (int c = 0; c < Classes; c++) seedRow[c] = (float)direction[c];
        var logits = probes.Run(logitsFunction, input, batch, (_, b, classes) => RepeatRows(seedRow, b, classes), out int classes, positionMask);
        if (classes != Classes) throw new ArgumentException($"Laplace-LoRA: the logits function returned {classes} classes; the posterior was fitted with {Classes}");
        means = Array.ConvertAll(logits, v => (double)v);
        using var timing = LaplacePhaseTimer.Measure(LaplacePhase.Variance);
        var variances = new double[batch];
        for (int k = 0; k < blocks.Length; k++)
        {
            if (blocks[k] is KfacLaplaceLayer { IsFullRank: true } kfac)
            {
                // Hot path: float Jacobian row by one GEMM, projected by two more (no allocation per example).
                var row = new float[kfac.ParameterCount];
                for (int n = 0; n < batch; n++)
                {
                    posteriorMatrices[k].ExampleGradient(n, row.AsSpan());
                    variances[n] += kfac.JacobianVariance(row);
                }
                continue;
            }
            var jacobian = new double[blocks[k].ParameterCount];
            for (int n = 0; n < batch; n++)
            {
                posteriorMatrices[k].ExampleGradient(n, jacobian.AsSpan());
                variances[n] += blocks[k].ProjectedCovariance(jacobian, 1)[0];
            }
        }
        return variances;
    }

    private static float[] RepeatRows(float[] row, int batch, int classes)
    {
        if (row.Length != classes) throw new ArgumentException($"Laplace-LoRA: the logits function returned {classes} classes; the direction has {row.Length}");
        var seed = new float[batch * classes];
        for (int n = 0; n < batch; n++) row.CopyTo(seed, n * classes);
        return seed;
    }

    /// <summary>Class probabilities (B×C, row-major) of the linearised predictive by the probit approximation.</summary>
    public double[] PredictProbit(Tensor input) => ProbitProbabilities(PredictLinearized(input));

    /// <summary>Class probabilities (B×C) of the linearised predictive by Monte Carlo over the full logit covariance.</summary>
    public double[] PredictMonteCarlo(Tensor input, int samples, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        var lin = PredictLinearized(input);
        int c = lin.Classes;
        var probabilities = new double[lin.BatchSize * c];
        for (int n = 0; n < lin.BatchSize; n++)
        {
            GaussianLogitPredictive.MonteCarloSoftmax(lin.Means.AsSpan(n * c, c), lin.Covariances.AsSpan(n * c * c, c * c), samples, seed + n,
                probabilities.AsSpan(n * c, c));
        }
        return probabilities;
    }

    /// <summary>
    /// Cross-check predictive without linearisation: draws the LoRA weights from the posterior <paramref name="samples"/>
    /// times, runs the model and averages the softmax (B×C). The MAP weights are restored afterwards.
    /// </summary>
    public double[] PredictBySampling(Tensor input, int samples, long seed)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        var random = new GaussianRandom(seed);
        var maps = posteriorMatrices.Select(m => m.Values()).ToArray();
        double[]? sum = null;
        int batch = 0, classes = 0;
        try
        {
            for (int s = 0; s < samples; s++)
            {
                using var scope = TensorScope.Begin();
                using var noGrad = Autograd.NoGrad();
                for (int k = 0; k < blocks.Length; k++)
                {
                    var draw = new double[blocks[k].ParameterCount];
                    blocks[k].Sample(random, draw);
                    posteriorMatrices[k].SetValues(draw);
                }
                var logits = logitsFunction(input);
                if (logits.Rank != 2) throw new ArgumentException($"Laplace-LoRA: the logits function returned {logits.ShapeString}; expected [batch, classes]");
                batch = logits.Size(0);
                classes = logits.Size(1);
                var values = logits.ToArray();
                sum ??= new double[values.Length];
                var row = new double[classes];
                for (int n = 0; n < batch; n++)
                {
                    for (int c = 0; c < classes; c++) row[c] = values[n * classes + c];
                    SoftmaxInPlace(row);
                    for (int c = 0; c < classes; c++) sum[n * classes + c] += row[c] / samples;
                }
            }
        }
        finally
        {
            using var scope = TensorScope.Begin();
            for (int k = 0; k < blocks.Length; k++) posteriorMatrices[k].SetValues(maps[k]);
        }
        return sum!;
    }

    /// <summary>Per block, the Jacobians of all examples' logits: [(n·C + c)·d_l + i] = ∂f_{n,c}/∂θ_{l,i}. Means: MAP logits B×C.</summary>
    internal double[][] Jacobians(Tensor input, out double[] means)
    {
        ArgumentNullException.ThrowIfNull(input);
        int batch = input.Rank > 0 ? input.Size(0) : 0;
        if (batch == 0) throw new ArgumentException($"Laplace-LoRA: input {input.ShapeString} has no examples");
        var jacobians = new double[blocks.Length][];
        for (int k = 0; k < blocks.Length; k++)
        {
            long length = (long)batch * Classes * blocks[k].ParameterCount;
            if (length > Array.MaxLength) throw new ArgumentException($"Laplace-LoRA: the Jacobian of '{blocks[k].Name}' for {batch} examples has {length} values; use smaller batches");
            jacobians[k] = new double[length];
        }
        means = [];
        for (int c = 0; c < Classes; c++)
        {
            int column = c;
            var logits = probes.Run(logitsFunction, input, batch, (_, b, classes) => ColumnSeed(b, classes, column), out int classes);
            if (classes != Classes) throw new ArgumentException($"Laplace-LoRA: the logits function returned {classes} classes; the posterior was fitted with {Classes}");
            if (c == 0) means = Array.ConvertAll(logits, v => (double)v);
            for (int k = 0; k < blocks.Length; k++)
            {
                int d = blocks[k].ParameterCount;
                for (int n = 0; n < batch; n++) posteriorMatrices[k].ExampleGradient(n, jacobians[k].AsSpan((n * Classes + c) * d, d));
            }
        }
        return jacobians;
    }

    internal LinearizedLogits Combine(double[][] jacobians, double[] means)
    {
        int c = Classes, batch = means.Length / c;
        var covariances = new double[batch * c * c];
        for (int k = 0; k < blocks.Length; k++)
        {
            int d = blocks[k].ParameterCount;
            for (int n = 0; n < batch; n++)
            {
                var projected = blocks[k].ProjectedCovariance(jacobians[k].AsSpan(n * c * d, c * d), c);
                var target = covariances.AsSpan(n * c * c, c * c);
                for (int i = 0; i < projected.Length; i++) target[i] += projected[i];
            }
        }
        return new LinearizedLogits(batch, c, means, covariances);
    }

    internal static double[] ProbitProbabilities(LinearizedLogits lin)
    {
        int c = lin.Classes;
        var probabilities = new double[lin.BatchSize * c];
        var variance = new double[c];
        for (int n = 0; n < lin.BatchSize; n++)
        {
            for (int i = 0; i < c; i++) variance[i] = Math.Max(0, lin.Covariances[n * c * c + i * c + i]);
            GaussianLogitPredictive.ProbitSoftmax(lin.Means.AsSpan(n * c, c), variance, probabilities.AsSpan(n * c, c));
        }
        return probabilities;
    }

    private static float[] ColumnSeed(int batch, int classes, int column)
    {
        var seed = new float[batch * classes];
        for (int n = 0; n < batch; n++) seed[n * classes + column] = 1;
        return seed;
    }

    private static void SoftmaxInPlace(Span<double> values)
    {
        double max = double.NegativeInfinity;
        foreach (var v in values) max = Math.Max(max, v);
        double total = 0;
        for (int i = 0; i < values.Length; i++) total += values[i] = Math.Exp(values[i] - max);
        for (int i = 0; i < values.Length; i++) values[i] /= total;
    }
}
