using MathNet.Numerics.Integration;
using Microsoft.ML.Peft.Bayesian;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.Bayesian;

[TestClass]
public sealed class GaussianLogitPredictiveTests
{
    /// <summary>E[σ(f)] and E[σ(f)²] for f ~ N(μ, v) by 256-point Gauss–Legendre quadrature over μ ± 12√v.</summary>
    private static (double Mean, double SecondMoment) SigmoidMoments(double mu, double v)
    {
        double sd = Math.Sqrt(v);
        double Density(double f) => Math.Exp(-(f - mu) * (f - mu) / (2 * v)) / Math.Sqrt(2 * Math.PI * v);
        static double Sigmoid(double f) => 1 / (1 + Math.Exp(-f));
        double mean = GaussLegendreRule.Integrate(f => Sigmoid(f) * Density(f), mu - 12 * sd, mu + 12 * sd, 256);
        double second = GaussLegendreRule.Integrate(f => Sigmoid(f) * Sigmoid(f) * Density(f), mu - 12 * sd, mu + 12 * sd, 256);
        return (mean, second);
    }

    [TestMethod]
    public void Probit_HandComputed()
    {
        // Variance 24/π scales logit 0 by 1/√(1 + 3) = 1/2: [2, 1] → [1, 1] → uniform.
        var p = new double[2];
        GaussianLogitPredictive.ProbitSoftmax([2, 1], [24 / Math.PI, 0], p);
        AssertClose([0.5, 0.5], p, 1e-15, "p");
        Assert.AreEqual(1 / (1 + Math.Exp(-1.0)), GaussianLogitPredictive.ProbitSigmoid(2, 24 / Math.PI), 1e-15);
        // Zero variance is the plain softmax.
        GaussianLogitPredictive.ProbitSoftmax([0, Math.Log(3)], [0, 0], p);
        AssertClose([0.25, 0.75], p, 1e-15, "softmax");
    }

    [TestMethod]
    public void ProbitSigmoid_IsWithin002OfTheExactGaussianIntegral()
    {
        // MacKay's approximation: the documented bound over μ ∈ [−8, 8], v ∈ [0.01, 50] is 0.02 (measured max ≈ 0.015).
        double worst = 0;
        for (double mu = -8; mu <= 8; mu += 0.5)
        {
            foreach (double v in new[] { 0.01, 0.3, 1, 3, 10, 20, 50 })
            {
                worst = Math.Max(worst, Math.Abs(SigmoidMoments(mu, v).Mean - GaussianLogitPredictive.ProbitSigmoid(mu, v)));
            }
        }
        Assert.IsTrue(worst < 0.02, $"worst probit error {worst}");
        Assert.IsTrue(worst > 0.005, "the approximation is not exact; a zero error would mean the test is broken");
    }

    [TestMethod]
    [DataRow(0.8, 2.0)]
    [DataRow(-2.5, 0.5)]
    [DataRow(3.0, 9.0)]
    public void MonteCarloSigmoid_ConvergesToTheQuadratureValue(double mu, double v)
    {
        (double mean, double second) = SigmoidMoments(mu, v);
        double sd = Math.Sqrt(second - mean * mean);
        foreach (int samples in new[] { 10_000, 1_000_000 })
        {
            double estimate = GaussianLogitPredictive.MonteCarloSigmoid(mu, v, samples, seed: 11);
            Assert.AreEqual(mean, estimate, 4 * sd / Math.Sqrt(samples), $"S = {samples}");
        }
    }

    [TestMethod]
    public void MonteCarloSoftmax_TwoClasses_IsTheSigmoidOfTheLogitDifference()
    {
        // f₁ − f₀ ~ N(μ₁ − μ₀, Σ₀₀ + Σ₁₁ − 2Σ₀₁) and p₁ = E σ(f₁ − f₀).
        double[] mu = [0.3, 1.1], cov = [1.2, 0.4, 0.4, 0.9];
        (double mean, double second) = SigmoidMoments(0.8, 1.2 + 0.9 - 0.8);
        const int samples = 400_000;
        var p = new double[2];
        GaussianLogitPredictive.MonteCarloSoftmax(mu, cov, samples, seed: 4, p);
        Assert.AreEqual(mean, p[1], 4 * Math.Sqrt(second - mean * mean) / Math.Sqrt(samples));
        Assert.AreEqual(1, p[0] + p[1], 1e-12);
    }

    [TestMethod]
    public void MonteCarloSoftmax_WithDiagonalCovariance_EqualsTheIndependentSampler()
    {
        // Same seed ⇒ same z stream; with Σ diagonal, L z = sd ∘ z, so both paths give identical numbers.
        double[] mu = [0.5, -1, 2], variance = [0.3, 1.5, 0.8];
        var full = new double[3];
        var independent = new double[3];
        double[] cov = [0.3, 0, 0, 0, 1.5, 0, 0, 0, 0.8];
        GaussianLogitPredictive.MonteCarloSoftmax(mu, cov, 5000, seed: 8, full);
        GaussianLogitPredictive.MonteCarloSoftmaxDiagonal(mu, variance, 5000, seed: 8, independent);
        AssertClose(full, independent, 1e-14, "p");
    }

    [TestMethod]
    public void ProbitAndMonteCarlo_AgreeForIndependentLogitsWithModerateVariance()
    {
        // The multiclass probit ignores correlations and scales each logit alone; for independent logits with
        // variances ≤ 0.5 its error against MC (S = 100k, MC error ≲ 0.005) stays below 0.06 (measured ≈ 0.045).
        var random = new Random(3);
        double worst = 0;
        for (int trial = 0; trial < 40; trial++)
        {
            const int c = 4;
            double[] mu = Gaussian(1, c, seed: 100 + trial).Select(x => 1.5 * x).ToArray();
            double[] variance = Enumerable.Range(0, c).Select(_ => 0.5 * random.NextDouble()).ToArray();
            double[] probit = new double[c], mc = new double[c];
            GaussianLogitPredictive.ProbitSoftmax(mu, variance, probit);
            GaussianLogitPredictive.MonteCarloSoftmaxDiagonal(mu, variance, 100_000, seed: trial, mc);
            worst = Math.Max(worst, MaxAbsDiff(probit, mc));
        }
        Assert.IsTrue(worst < 0.06, $"worst |probit − MC| = {worst}");
    }

    [TestMethod]
    public void BadInput_IsRejected()
    {
        var p = new double[2];
        Assert.ThrowsExactly<ArgumentException>(() => GaussianLogitPredictive.ProbitSoftmax([1, 2], [1], p));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GaussianLogitPredictive.ProbitSoftmax([1, 2], [1, -1], p));
        var ex = Assert.ThrowsExactly<Microsoft.ML.Peft.LinearAlgebra.MatrixNotPositiveDefiniteException>(
            () => GaussianLogitPredictive.MonteCarloSoftmax([0, 0], [-1, 0, 0, -1], 10, 1, p));
        StringAssert.Contains(ex.Message, "logit covariance");
    }
}
