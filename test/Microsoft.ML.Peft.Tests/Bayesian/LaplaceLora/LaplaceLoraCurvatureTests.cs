using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

using LaplaceLora = Microsoft.ML.Peft.Bayesian.LaplaceLora;

[TestClass]
public sealed class LaplaceLoraCurvatureTests
{
    /// <summary>
    /// With one example, K-FAC of a linear map is exact: the gradient is g xᵀ, so its outer product is (g gᵀ) ⊗ (x xᵀ).
    /// Every LoRA block's precision and the evidence must match a dense Laplace built from the brute-force gradient.
    /// </summary>
    [TestMethod]
    public void KfacWithOneExample_EqualsDenseLaplaceOfExactEmpiricalFisher()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 3);
        var x = Tensor.Randn(new Generator(7), 1, 5);
        const int label = 2;
        var p = BruteForce.Probabilities(model.Forward, x, 0);
        var seed = p.Select((v, c) => v - (c == label ? 1 : 0)).ToArray();
        var gradients = BruteForce.Gradients(peft, model.Forward, x, 0, seed);
        var names = BruteForce.LoraMatrices(peft);
        var means = names.Select(m => Array.ConvertAll(m.Weight.ToArray(), v => (double)v)).ToArray();

        using var laplace = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, [label])],
            new LaplaceLoraOptions { Fisher = FisherKind.Empirical, PriorPrecision = 0.7 });

        Assert.AreEqual(4, laplace.Blocks.Count);
        Assert.AreEqual(Math.Log(p[label]), laplace.TrainLogLikelihood, 1e-6);
        var dense = new List<ILaplacePosteriorBlock>();
        var random = new Random(1);
        for (int k = 0; k < 4; k++)
        {
            var block = (KfacLaplaceLayer)laplace.Blocks[k];
            Assert.AreEqual(names[k].Name, block.Name);
            var full = new FullLaplace(names[k].Name, means[k], BruteForce.Outer(gradients[k], gradients[k]), 1) { PriorPrecision = 0.7 };
            dense.Add(full);
            int d = block.ParameterCount;
            var v = Enumerable.Range(0, d).Select(_ => random.NextDouble() - 0.5).ToArray();
            var kfac = new double[d];
            block.PrecisionTimes(v, kfac);
            double gv = gradients[k].Zip(v, (a, b) => a * b).Sum();
            for (int i = 0; i < d; i++) Assert.AreEqual(gradients[k][i] * gv + 0.7 * v[i], kfac[i], 1e-6 * (1 + Math.Abs(kfac[i])), $"{block.Name} P·v[{i}]");
            Assert.AreEqual(full.SpectrumTerms(0.7).LogDeterminant, block.LogDetPosteriorPrecision(), 1e-6, block.Name);
        }
        double reference = LaplaceMarginalLikelihood.Evaluate(Math.Log(p[label]), dense);
        Assert.AreEqual(reference, laplace.LogMarginalLikelihood(), 1e-5 * Math.Abs(reference));
    }

    /// <summary>
    /// Sampled-label Fisher vs the exact GGN: one example repeated M times makes A = x xᵀ exact and G the mean of M
    /// sampled g gᵀ, whose expectation is Jᵀ(diag p − p pᵀ)J of the layer output; so the K-FAC posterior converges to the
    /// dense Laplace of the exact GGN block. Relative error of the curvature is O(1/√M) ≈ 2% for M = 2000; we bound
    /// the log det and evidence error by 1% (log det is dominated by λ-independent well-determined directions).
    /// </summary>
    [TestMethod]
    public void SampledFisherOfRepeatedExample_ApproachesExactGgnLaplace()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 4);
        const int copies = 2000, classes = 3;
        var one = Tensor.Randn(new Generator(8), 1, 5);
        var x = one.Expand(copies, 5).Contiguous();
        var p = BruteForce.Probabilities(model.Forward, one, 0);
        var jac = BruteForce.Jacobians(peft, model.Forward, one, 0, classes);
        var names = BruteForce.LoraMatrices(peft);
        var labels = new int[copies];

        using var laplace = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, labels)], new LaplaceLoraOptions { Seed = 11, PriorPrecision = 0.5 });
        var dense = new List<ILaplacePosteriorBlock>();
        for (int k = 0; k < names.Count; k++)
        {
            int d = jac[k].Length / classes;
            var ggn = new double[d * d];
            for (int a = 0; a < classes; a++)
            for (int b = 0; b < classes; b++)
            {
                double h = (a == b ? p[a] : 0) - p[a] * p[b];
                for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++) ggn[i * d + j] += jac[k][a * d + i] * h * jac[k][b * d + j];
            }
            var mean = Array.ConvertAll(names[k].Weight.ToArray(), v => (double)v);
            var full = new FullLaplace(names[k].Name, mean, ggn, copies) { PriorPrecision = 0.5 };
            dense.Add(full);
            double exact = full.SpectrumTerms(0.5).LogDeterminant;
            double kfac = laplace.Blocks[k].SpectrumTerms(0.5).LogDeterminant;
            Console.WriteLine($"{names[k].Name}: log det P exact GGN {exact:F4}, sampled K-FAC {kfac:F4}");
            Assert.AreEqual(exact, kfac, 0.01 * Math.Abs(exact), names[k].Name);
        }
        double ll = copies * Math.Log(p[0]);
        Assert.AreEqual(ll, laplace.TrainLogLikelihood, 1e-6 * Math.Abs(ll));
        double reference = LaplaceMarginalLikelihood.Evaluate(ll, dense);
        Assert.AreEqual(reference, laplace.LogMarginalLikelihood(), 0.01 * Math.Abs(reference));
    }

    /// <summary>
    /// The exact Fisher (no sampling) of one example is the GGN Jᵀ(diag p − p pᵀ)J of each LoRA matrix; with one example
    /// and one position per matrix it is exactly G ⊗ A (every class's pulled-back gradient is u_c ⊗ x for the same x),
    /// so the K-FAC block must equal the dense Laplace of the brute-force GGN — for two classes (one backward pass,
    /// seed √(p₀p₁)(−1, 1)) and three (three passes). The diagonal variant must equal the GGN's diagonal.
    /// </summary>
    [TestMethod]
    [DataRow(2)]
    [DataRow(3)]
    public void ExactFisherOfOneExample_EqualsDenseGgnLaplace(int classes)
    {
        var (model, peft) = TinyMlp.WithLora(seed: 12, classes: classes);
        var x = Tensor.Randn(new Generator(13), 1, 5);
        var p = BruteForce.Probabilities(model.Forward, x, 0);
        var jac = BruteForce.Jacobians(peft, model.Forward, x, 0, classes);
        var names = BruteForce.LoraMatrices(peft);
        var ggns = new List<double[]>();
        for (int k = 0; k < names.Count; k++)
        {
            int d = jac[k].Length / classes;
            var ggn = new double[d * d];
            for (int a = 0; a < classes; a++)
            for (int b = 0; b < classes; b++)
            {
                double h = (a == b ? p[a] : 0) - p[a] * p[b];
                for (int i = 0; i < d; i++)
                for (int j = 0; j < d; j++) ggn[i * d + j] += jac[k][a * d + i] * h * jac[k][b * d + j];
            }
            ggns.Add(ggn);
        }

        using (var laplace = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, [1])], new LaplaceLoraOptions { Fisher = FisherKind.Exact, PriorPrecision = 0.3 }))
        {
            var dense = new List<ILaplacePosteriorBlock>();
            var random = new Random(2);
            for (int k = 0; k < names.Count; k++)
            {
                var mean = Array.ConvertAll(names[k].Weight.ToArray(), v => (double)v);
                var full = new FullLaplace(names[k].Name, mean, ggns[k], 1) { PriorPrecision = 0.3 };
                dense.Add(full);
                int d = full.ParameterCount;
                var v = Enumerable.Range(0, d).Select(_ => random.NextDouble() - 0.5).ToArray();
                var kfac = new double[d];
                var block = (KfacLaplaceLayer)laplace.Blocks[k];
                block.PrecisionTimes(v, kfac);
                for (int i = 0; i < d; i++)
                {
                    double expected = 0.3 * v[i];
                    for (int j = 0; j < d; j++) expected += ggns[k][i * d + j] * v[j];
                    Assert.AreEqual(expected, kfac[i], 1e-6 * (1 + Math.Abs(expected)), $"{names[k].Name} P·v[{i}]");
                }
                Assert.AreEqual(full.SpectrumTerms(0.3).LogDeterminant, block.LogDetPosteriorPrecision(), 1e-6, names[k].Name);
            }
            double reference = LaplaceMarginalLikelihood.Evaluate(Math.Log(p[1]), dense);
            Assert.AreEqual(reference, laplace.LogMarginalLikelihood(), 1e-6 * Math.Abs(reference));
        }

        using var diagonal = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, [1])],
            new LaplaceLoraOptions { Fisher = FisherKind.Exact, Curvature = CurvatureKind.Diagonal, PriorPrecision = 0.3 });
        for (int k = 0; k < names.Count; k++)
        {
            var block = (DiagonalLaplace)diagonal.Blocks[k];
            var variance = new double[block.ParameterCount];
            block.PosteriorVariance(variance);
            int d = block.ParameterCount;
            for (int i = 0; i < d; i++)
            {
                double expected = 1 / (ggns[k][i * d + i] + 0.3);
                Assert.AreEqual(expected, variance[i], 1e-6 * expected, $"{names[k].Name}[{i}] diagonal");
            }
        }
    }

    /// <summary>The diagonal Fisher over several batches equals Σ_n (∂ℓ_n/∂θ)²/N from per-example brute-force gradients.</summary>
    [TestMethod]
    public void DiagonalCurvature_EqualsPerExampleSquaredGradients()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 5);
        var x = Tensor.Randn(new Generator(9), 6, 5);
        int[] labels = [0, 1, 2, 2, 1, 0];
        var names = BruteForce.LoraMatrices(peft);
        var sums = names.Select(m => new double[m.Weight.Count]).ToArray();
        for (int n = 0; n < 6; n++)
        {
            var p = BruteForce.Probabilities(model.Forward, x, n);
            var g = BruteForce.Gradients(peft, model.Forward, x, n, p.Select((v, c) => v - (c == labels[n] ? 1 : 0)).ToArray());
            for (int k = 0; k < names.Count; k++)
                for (int i = 0; i < g[k].Length; i++) sums[k][i] += g[k][i] * g[k][i];
        }
        using var laplace = LaplaceLora.Fit(peft, model.Forward,
            [new LaplaceBatch(x.Narrow(0, 0, 4), labels[..4]), new LaplaceBatch(x.Narrow(0, 4, 2), labels[4..])],
            new LaplaceLoraOptions { Curvature = CurvatureKind.Diagonal, Fisher = FisherKind.Empirical, PriorPrecision = 2 });
        Assert.AreEqual(6, laplace.DataCount);
        for (int k = 0; k < names.Count; k++)
        {
            var block = (DiagonalLaplace)laplace.Blocks[k];
            var variance = new double[block.ParameterCount];
            block.PosteriorVariance(variance);
            for (int i = 0; i < variance.Length; i++)
            {
                double expected = 1 / (sums[k][i] + 2);   // N·(Σ/N) + λ
                Assert.AreEqual(expected, variance[i], 1e-6 * expected, $"{names[k].Name}[{i}]");
            }
        }
    }

    /// <summary>The last-layer variant keeps only the final LoRA matrix (fc2's B), and equals that K-FAC block of the full fit.</summary>
    [TestMethod]
    public void LastLayer_KeepsOnlyTheFinalLoraMatrix()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 6);
        var x = Tensor.Randn(new Generator(10), 8, 5);
        var labels = Enumerable.Range(0, 8).Select(i => i % 3).ToArray();
        double logDetFull;
        using (var full = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, labels)], new LaplaceLoraOptions { Seed = 3 }))
            logDetFull = full.Blocks[^1].SpectrumTerms(1).LogDeterminant;
        using var last = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, labels)], new LaplaceLoraOptions { Seed = 3, Curvature = CurvatureKind.LastLayer });
        Assert.AreEqual(1, last.Blocks.Count);
        Assert.AreEqual("fc2.lora_B.default", last.Blocks[0].Name);
        Assert.AreEqual(logDetFull, last.Blocks[0].SpectrumTerms(1).LogDeterminant, 1e-12);
    }
}
