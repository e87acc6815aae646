using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

using LaplaceLora = Microsoft.ML.Peft.Bayesian.LaplaceLora;

[TestClass]
public sealed class LaplaceLoraPredictiveTests
{
    /// <summary>Linearised logit covariance Σ_l J_l Σ_l J_lᵀ vs explicit per-logit Jacobians and dense Σ_l (MLP, K-FAC and diagonal).</summary>
    [TestMethod]
    [DataRow(CurvatureKind.Kfac)]
    [DataRow(CurvatureKind.Diagonal)]
    public void LinearizedCovariance_MatchesExplicitJacobians(CurvatureKind kind)
    {
        var (model, peft) = TinyMlp.WithLora(seed: 12);
        var train = Tensor.Randn(new Generator(13), 10, 5);
        var test = Tensor.Randn(new Generator(14), 3, 5);
        CheckAgainstBruteForce(peft, model.Forward, train, test, classes: 3, kind);
    }

    /// <summary>
    /// Same check on a sequence model (the LoRA test's TinyModel on [B, T, d] with logits averaged over T), where every
    /// LoRA matrix is applied at T positions per example and multiplicative interactions (q ⊙ v) sit between layers.
    /// </summary>
    [TestMethod]
    public void LinearizedCovariance_MatchesExplicitJacobians_SequenceModel()
    {
        var model = new TinyModel(new Generator(20), d: 4, hidden: 5, classes: 3, layerCount: 2);
        var peft = Microsoft.ML.Peft.Tuners.PeftModel.Inject(model, new Microsoft.ML.Peft.Lora.LoraConfig
        {
            TargetModules = new[] { "q_proj", "fc1" },
            Rank = 2,
            Alpha = 4,
            InitLoraWeights = Microsoft.ML.Peft.Lora.LoraInit.Random,
        }, generator: new Generator(21));
        model.Eval();
        Tensor Logits(Tensor x) => model.Forward(x).Mean(1);
        var train = Tensor.Randn(new Generator(22), 6, 3, 4);
        var test = Tensor.Randn(new Generator(23), 2, 3, 4);
        CheckAgainstBruteForce(peft, Logits, train, test, classes: 3, CurvatureKind.Kfac);
    }

    private static void CheckAgainstBruteForce(Microsoft.ML.Peft.Tuners.PeftModel peft, Func<Tensor, Tensor> logits, Tensor train, Tensor test, int classes, CurvatureKind kind)
    {
        int batch = test.Size(0);
        var jacobians = Enumerable.Range(0, batch).Select(n => BruteForce.Jacobians(peft, logits, test, n, classes)).ToArray();
        var labels = Enumerable.Range(0, train.Size(0)).Select(i => i % classes).ToArray();
        using var laplace = LaplaceLora.Fit(peft, logits, [new LaplaceBatch(train, labels)], new LaplaceLoraOptions { Curvature = kind, Seed = 1 });
        laplace.SetPriorPrecision(0.3);
        var lin = laplace.PredictLinearized(test);
        // One direction of the logits (one backward pass): Var(dᵀf) = dᵀ(Σ_l J_l Σ_l J_lᵀ)d.
        double[] direction = [.. Enumerable.Range(0, classes).Select(c => c % 2 == 0 ? 0.5 + c : -1.0)];
        var directional = laplace.DirectionalVariance(test, direction, out var directionalMeans);
        var sigmas = laplace.Blocks.Select(BruteForce.DenseCovariance).ToArray();
        float[] mapLogits;
        using (TensorScope.Begin())
        using (Autograd.NoGrad()) mapLogits = logits(test).ToArray();
        for (int n = 0; n < batch; n++)
        {
            var expected = new double[classes * classes];
            for (int k = 0; k < sigmas.Length; k++)
            {
                var part = BruteForce.Project(jacobians[n][k], classes, sigmas[k]);
                for (int i = 0; i < expected.Length; i++) expected[i] += part[i];
            }
            for (int i = 0; i < expected.Length; i++)
                Assert.AreEqual(expected[i], lin.Covariances[n * classes * classes + i], 1e-5 * (1e-3 + Math.Abs(expected[i])), $"example {n}, entry {i}");
            for (int c = 0; c < classes; c++) Assert.AreEqual(mapLogits[n * classes + c], lin.Means[n * classes + c], 0.0);
            for (int c = 0; c < classes; c++) Assert.AreEqual(mapLogits[n * classes + c], directionalMeans[n * classes + c], 0.0);
            double quadratic = 0;
            for (int i = 0; i < classes; i++) for (int j = 0; j < classes; j++) quadratic += direction[i] * expected[i * classes + j] * direction[j];
            Assert.AreEqual(quadratic, directional[n], 1e-5 * (1e-3 + Math.Abs(quadratic)), $"example {n}, directional variance");
        }
    }

    /// <summary>
    /// Probit vs Monte Carlo of the same Gaussian logits, and the linearised predictive vs weight sampling (no
    /// linearisation). Probit's error for logit variances ≲ 0.2 is a few 1e-3 (bound 0.015). Linearisation neglects
    /// second-order terms of the network in the weights, so its gap to weight sampling must shrink in proportion to
    /// the posterior variance: ×10 in λ must cut it by well over ×3 (it is O(1/λ); MC noise of 4000 draws ≈ 5e-4), and
    /// at λ = 400 it is below 0.006. Weight sampling restores the MAP weights bit for bit.
    /// </summary>
    [TestMethod]
    public void ProbitMonteCarloAndWeightSampling_Agree()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 30);
        var train = Tensor.Randn(new Generator(31), 20, 5);
        var test = Tensor.Randn(new Generator(32), 4, 5);
        var labels = Enumerable.Range(0, 20).Select(i => i % 3).ToArray();
        var mapWeights = BruteForce.LoraMatrices(peft).Select(m => m.Weight.ToArray()).ToArray();
        using var laplace = LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(train, labels)], new LaplaceLoraOptions { Seed = 2 });
        var gaps = new List<double>();
        foreach (double lambda in (double[])[40, 400])
        {
            laplace.SetPriorPrecision(lambda);
            var probit = laplace.PredictProbit(test);
            var mc = laplace.PredictMonteCarlo(test, samples: 20000, seed: 5);
            var sampled = laplace.PredictBySampling(test, samples: 4000, seed: 6);
            var lin = laplace.PredictLinearized(test);
            double maxVariance = 0, worstProbit = 0, worstSampled = 0;
            for (int n = 0; n < 4; n++) for (int c = 0; c < 3; c++) maxVariance = Math.Max(maxVariance, lin.Covariances[n * 9 + c * 4]);
            for (int i = 0; i < probit.Length; i++)
            {
                worstProbit = Math.Max(worstProbit, Math.Abs(mc[i] - probit[i]));
                worstSampled = Math.Max(worstSampled, Math.Abs(mc[i] - sampled[i]));
            }
            Console.WriteLine($"λ = {lambda}: largest logit variance {maxVariance:F4}, max |MC − probit| {worstProbit:F4}, max |MC − weight sampling| {worstSampled:F4}");
            Assert.IsTrue(maxVariance > 0.01, "the test needs visible uncertainty");
            Assert.IsTrue(worstProbit < 0.015, $"probit vs MC differ by {worstProbit}");
            gaps.Add(worstSampled);
        }
        Assert.IsTrue(gaps[1] < gaps[0] / 3, $"linearisation gap must shrink with the variance: {gaps[0]} → {gaps[1]}");
        Assert.IsTrue(gaps[1] < 0.006, $"linearised vs sampled predictive at λ = 400 differ by {gaps[1]}");
        var after = BruteForce.LoraMatrices(peft).Select(m => m.Weight.ToArray()).ToArray();
        for (int k = 0; k < after.Length; k++) CollectionAssert.AreEqual(mapWeights[k], after[k]);
    }
}
