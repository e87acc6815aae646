using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.Bayesian;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.Bayesian;

[TestClass]
public sealed class PriorPrecisionOptimizerTests
{
    private static readonly TinyLogisticRegression Model = new();

    private static FullLaplace FullPosterior() =>
        new("logreg", Model.Map, RowMajor(Model.Hessian / TinyLogisticRegression.Count), TinyLogisticRegression.Count);

    [TestMethod]
    public void Newton_FindsTheMaximiserOfTheBruteForceEvidence_OnAFineGrid()
    {
        // Grid over log λ ∈ [−8, 8] with step 0.001 on the brute-force evidence.
        double bestU = double.NaN, bestValue = double.NegativeInfinity;
        for (int i = 0; i <= 16000; i++)
        {
            double u = -8 + i * 0.001, value = Model.BruteForceEvidence(Math.Exp(u), Model.Hessian);
            if (value > bestValue)
            {
                bestValue = value;
                bestU = u;
            }
        }
        FullLaplace block = FullPosterior();
        double lambda = PriorPrecisionOptimizer.MaximizeEvidence([block])[0];
        Assert.AreEqual(lambda, block.PriorPrecision, "the result is applied to the block");
        Assert.AreEqual(bestU, Math.Log(lambda), 0.001);
        Assert.IsTrue(Model.BruteForceEvidence(lambda, Model.Hessian) >= bestValue - 1e-12, "no grid point beats Newton");
        // MacKay's condition at the optimum: λ‖θ*‖² = γ.
        PrecisionSpectrumTerms terms = block.SpectrumTerms(lambda);
        Assert.AreEqual(terms.EffectiveParameters, lambda * block.ScatterFromPriorMean, 1e-10);
    }

    [TestMethod]
    public void Newton_MatchesTheClosedFormForAnIsotropicDiagonalBlock()
    {
        // All h equal: γ = d·h/(h+λ) = λs ⇒ sλ² + shλ − dh = 0.
        const int d = 5;
        const double fisher = 0.4, dataCount = 10, h = fisher * dataCount;
        double[] theta = [0.3, -0.2, 0.1, 0.4, -0.5];
        double s = theta.Sum(x => x * x);
        var block = new DiagonalLaplace("b", theta, Enumerable.Repeat(fisher, d).ToArray(), dataCount);
        double expected = (-s * h + Math.Sqrt(s * s * h * h + 4 * s * d * h)) / (2 * s);
        Assert.AreEqual(expected, PriorPrecisionOptimizer.MaximizeEvidence([block])[0], 1e-12 * expected);
    }

    [TestMethod]
    public void Layerwise_MaximisesEachBlock_AndBeatsTheSharedScalar()
    {
        var small = new DiagonalLaplace("small-weights", [0.01, -0.02, 0.015], [2, 1, 3], 50);
        var large = new DiagonalLaplace("large-weights", [3, -2, 4, 1], [0.5, 0.2, 0.1, 1], 50);
        double[] layerwise = PriorPrecisionOptimizer.MaximizeEvidence([small, large], new PriorPrecisionOptions { Structure = PriorPrecisionStructure.Layerwise });
        for (int b = 0; b < 2; b++)
        {
            ILaplacePosteriorBlock block = b == 0 ? small : large;
            Assert.AreEqual(0, LaplaceMarginalLikelihood.BlockTermDerivatives(block, layerwise[b]).First, 1e-9, $"stationary for block {b}");
            foreach (double factor in new[] { 0.99, 1.01 })
            {
                Assert.IsTrue(LaplaceMarginalLikelihood.BlockTerm(block, layerwise[b]) > LaplaceMarginalLikelihood.BlockTerm(block, layerwise[b] * factor));
            }
        }
        Assert.IsTrue(layerwise[0] > 100 * layerwise[1], "small weights want a much stronger prior");
        double[] scalar = PriorPrecisionOptimizer.MaximizeEvidence([small, large]);
        Assert.AreEqual(scalar[0], scalar[1]);
        Assert.IsTrue(LaplaceMarginalLikelihood.Evaluate(0, [small, large], layerwise) > LaplaceMarginalLikelihood.Evaluate(0, [small, large], scalar));
    }

    [TestMethod]
    public void Adam_FirstStepIsLearningRateTimesTheSignOfTheGradient_AndConvergesWithMoreSteps()
    {
        FullLaplace block = FullPosterior();
        // Adam's first step is lr·m̂/(√v̂ + ε) = lr·g/(|g| + ε): ±0.1 in log λ, uphill on the evidence.
        double slope = (Model.BruteForceEvidence(Math.Exp(1e-5), Model.Hessian) - Model.BruteForceEvidence(Math.Exp(-1e-5), Model.Hessian)) / 2e-5;
        double oneStep = PriorPrecisionOptimizer.MaximizeEvidence([block], new PriorPrecisionOptions { Method = EvidenceMaximizer.Adam, AdamSteps = 1 })[0];
        double gradient = -slope; // of the negative evidence, which Adam minimises
        Assert.AreEqual(-0.1 * gradient / (Math.Abs(gradient) + 1e-8), Math.Log(oneStep), 1e-12);

        double newton = PriorPrecisionOptimizer.MaximizeEvidence([block])[0];
        double adam = PriorPrecisionOptimizer.MaximizeEvidence([block], new PriorPrecisionOptions { Method = EvidenceMaximizer.Adam, AdamSteps = 3000, AdamLearningRate = 0.05 })[0];
        Assert.AreEqual(Math.Log(newton), Math.Log(adam), 0.01);
    }

    [TestMethod]
    public void OptimumOutsideTheBounds_IsClampedToTheNearerBound()
    {
        // θ* = θ₀ ⇒ the evidence grows with λ forever.
        var atPrior = new DiagonalLaplace("at-prior", [0.0, 0.0], [1, 1], 10);
        Assert.AreEqual(1e8, PriorPrecisionOptimizer.MaximizeEvidence([atPrior])[0]);
        // No curvature ⇒ the evidence falls with λ.
        var flat = new DiagonalLaplace("flat", [1.0, 2.0], [0, 0], 10);
        Assert.AreEqual(1e-3, PriorPrecisionOptimizer.MaximizeEvidence([flat], new PriorPrecisionOptions { MinPriorPrecision = 1e-3 })[0]);
    }

    [TestMethod]
    public void GridSearch_FollowsLaplaceTorchsLogspaceGrid()
    {
        var seen = new List<double>();
        double best = PriorPrecisionOptimizer.GridSearch(lambda =>
        {
            seen.Add(lambda);
            return Math.Pow(Math.Log10(lambda) - 1.3, 2);
        });
        Assert.AreEqual(100, seen.Count);
        Assert.AreEqual(1e-4, seen[0], 1e-18);
        Assert.AreEqual(1e4, seen[99], 1e-9);
        // Grid points t_i = −4 + 8i/99; the nearest to 1.3 is i = 66 (t = 1.3333…).
        Assert.AreEqual(Math.Pow(10, -4 + 8.0 * 66 / 99), best, 1e-12);
        // NaN losses never win; ties keep the first.
        Assert.AreEqual(1.0, PriorPrecisionOptimizer.GridSearch(l => l < 1 ? double.NaN : 5, 0, 2, 3));
    }
}
