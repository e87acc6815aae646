using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.Bayesian;

[TestClass]
public sealed class DenseAndDiagonalLaplaceTests
{
    [TestMethod]
    public void FullLaplace_CovarianceProductsAndSamplesMatchDense()
    {
        const int d = 5;
        const double n = 8, lambda = 0.4;
        double[] h = Spd(d, seed: 60, shift: 0.0);
        double[] mean = Gaussian(1, d, seed: 61);
        var block = new FullLaplace("last-layer", mean, h, n) { PriorPrecision = lambda };
        var p = n * ToMathNet(h, d, d) + lambda * Matrix<double>.Build.DenseIdentity(d);
        var sigma = p.Inverse();
        AssertClose(RowMajor(sigma), block.Covariance(), 1e-12, "Σ");
        double[] v = Gaussian(1, d, seed: 62);
        var result = new double[d];
        block.CovarianceTimes(v, result);
        AssertClose((sigma * Vector<double>.Build.DenseOfArray(v)).ToArray(), result, 1e-12, "Σv");
        double[] j = Gaussian(2, d, seed: 63);
        var jm = ToMathNet(j, 2, d);
        AssertClose(RowMajor(jm * sigma * jm.Transpose()), block.ProjectedCovariance(j, 2), 1e-12, "JΣJᵀ");
        Assert.AreEqual(p.Cholesky().DeterminantLn, block.SpectrumTerms(lambda).LogDeterminant, 1e-11);

        // Sample = mean + Σ^{1/2} z with the same z stream.
        var evd = p.Evd(Symmetricity.Symmetric);
        var root = evd.EigenVectors * Matrix<double>.Build.DiagonalOfDiagonalVector(evd.EigenValues.Map(c => 1 / Math.Sqrt(c.Real))) * evd.EigenVectors.Transpose();
        var z = new double[d];
        new GaussianRandom(3).FillStandardNormal(z);
        var sample = new double[d];
        block.Sample(new GaussianRandom(3), sample);
        AssertClose((Vector<double>.Build.DenseOfArray(mean) + root * Vector<double>.Build.DenseOfArray(z)).ToArray(), sample, 1e-12, "sample");
    }

    [TestMethod]
    public void FullLaplace_RejectsAnIndefiniteCurvature()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new FullLaplace("head", [0, 0], [1, 0, 0, -0.5], 10));
        StringAssert.Contains(ex.Message, "head curvature");
    }

    [TestMethod]
    public void DiagonalLaplace_VariancesProjectionsAndSamples_HandComputed()
    {
        // P = 10·diag(0.1, 0.3) + 2 = diag(3, 5).
        var block = new DiagonalLaplace("bias", [1, -1], [0.1, 0.3], 10) { PriorPrecision = 2 };
        var variance = new double[2];
        block.PosteriorVariance(variance);
        AssertClose([1.0 / 3, 1.0 / 5], variance, 1e-15, "var");
        var result = new double[2];
        block.CovarianceTimes([3, 5], result);
        AssertClose([1, 1], result, 1e-15, "Σv");
        // J = [[1, 1], [2, 0]] ⇒ JΣJᵀ = [[1/3 + 1/5, 2/3], [2/3, 4/3]].
        AssertClose([1.0 / 3 + 1.0 / 5, 2.0 / 3, 2.0 / 3, 4.0 / 3], block.ProjectedCovariance([1, 1, 2, 0], 2), 1e-15, "JΣJᵀ");
        Assert.AreEqual(Math.Log(3) + Math.Log(5), block.SpectrumTerms(2).LogDeterminant, 1e-15);
        var rng = new GaussianRandom(9);
        double z0 = rng.NextStandardNormal(), z1 = rng.NextStandardNormal();
        var sample = new double[2];
        block.Sample(new GaussianRandom(9), sample);
        AssertClose([1 + z0 / Math.Sqrt(3), -1 + z1 / Math.Sqrt(5)], sample, 1e-15, "sample");
    }

    [TestMethod]
    public void DiagonalLaplace_RejectsNegativeCurvature_NamingTheBlock()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new DiagonalLaplace("classifier.bias", [0, 0], [1, -1], 10));
        StringAssert.Contains(ex.Message, "classifier.bias");
        StringAssert.Contains(ex.Message, "entry 1");
    }
}
