using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class GaussianRandomTests
{
    [TestMethod]
    public void Moments_MatchTheStandardNormal()
    {
        var rng = new GaussianRandom(123);
        const int n = 200_000;
        var x = new double[n];
        rng.FillStandardNormal(x);
        double mean = x.Average();
        double variance = x.Select(v => (v - mean) * (v - mean)).Sum() / (n - 1);
        double fourth = x.Select(v => Math.Pow(v - mean, 4)).Average();
        // Standard errors: mean 1/√n ≈ 0.0022, variance √(2/n) ≈ 0.0032, 4th moment √(96/n) ≈ 0.022; 4–5σ bounds.
        Assert.AreEqual(0, mean, 0.01);
        Assert.AreEqual(1, variance, 0.015);
        Assert.AreEqual(3, fourth, 0.1);
        // P(|Z| > 1.96) = 0.05 with standard error √(0.05·0.95/n) ≈ 0.0005.
        Assert.AreEqual(0.05, x.Count(v => Math.Abs(v) > 1.959963984540054) / (double)n, 0.0025);
    }

    [TestMethod]
    public void SameSeed_SameStream_DifferentSeed_DifferentStream()
    {
        var a = new GaussianRandom(5);
        var b = new GaussianRandom(5);
        var c = new GaussianRandom(6);
        double[] xa = new double[10], xb = new double[10], xc = new double[10];
        a.FillStandardNormal(xa);
        b.FillStandardNormal(xb);
        c.FillStandardNormal(xc);
        CollectionAssert.AreEqual(xa, xb);
        CollectionAssert.AreNotEqual(xa, xc);
        double u = new GaussianRandom(1).NextUniform();
        Assert.IsTrue(u >= 0 && u < 1);
    }
}
