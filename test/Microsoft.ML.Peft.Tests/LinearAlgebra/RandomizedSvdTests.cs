using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class RandomizedSvdTests
{
    [TestMethod]
    public void ExactlyLowRankMatrix_IsRecoveredToRoundoff()
    {
        // Rank 6 ≤ ℓ = r + p: the range finder captures the whole column space, so the result is exact.
        double[] sigma = [50, 20, 8, 3, 1, 0.1];
        double[] a = WithSingularValues(120, 80, sigma, seed: 40);
        var svd = RandomizedSvd.Compute(a, 120, 80, rank: 6, oversampling: 4, powerIterations: 0, seed: 1);
        AssertClose(sigma, svd.SingularValues, 1e-11, "σ");
        AssertClose(a, svd.Reconstruct(), 1e-11, "UΣVᵀ");
        Assert.IsTrue(OrthonormalityError(svd.U, 120, 6) < 1e-13);
    }

    [TestMethod]
    public void DecayingSpectrum_TopTripletsMatchTheExactSvd()
    {
        const int m = 150, n = 100, r = 5;
        double[] sigma = Enumerable.Range(0, n).Select(i => Math.Pow(0.7, i)).ToArray();
        double[] a = WithSingularValues(m, n, sigma, seed: 41);
        var exact = SingularValueDecomposition.ComputeThin(a, m, n);
        var approx = RandomizedSvd.Compute(a, m, n, r, oversampling: 10, powerIterations: 3, seed: 7);
        for (int j = 0; j < r; j++)
        {
            Assert.AreEqual(exact.SingularValues[j], approx.SingularValues[j], 1e-7 * sigma[0], $"σ{j}");
            AssertEqualUpToSign(exact.Vt.Slice(j * n, n).ToArray(), approx.Vt.Slice(j * n, n).ToArray(), 1e-4, $"v{j}");
        }
        // Spectral-norm error close to the optimum σ_r (Halko et al. bound; with q = 3 it is within a few %).
        var residual = ToMathNet(a, m, n) - ToMathNet(approx.Reconstruct(), m, n);
        Assert.IsTrue(residual.L2Norm() <= 1.05 * sigma[r], $"‖A − A_r‖₂ = {residual.L2Norm()} vs σ_r = {sigma[r]}");
    }

    [TestMethod]
    public void SameSeedSameResult_DifferentSeedStillAccurate()
    {
        double[] a = WithSingularValues(60, 40, [5, 3, 1, 0.5, 0.1], seed: 42);
        var first = RandomizedSvd.Compute(a, 60, 40, 3, seed: 9);
        var second = RandomizedSvd.Compute(a, 60, 40, 3, seed: 9);
        CollectionAssert.AreEqual(first.U.ToArray(), second.U.ToArray());
        CollectionAssert.AreEqual(first.SingularValues.ToArray(), second.SingularValues.ToArray());
        var other = RandomizedSvd.Compute(a, 60, 40, 3, seed: 10);
        AssertClose([5, 3, 1], other.SingularValues, 1e-11, "σ");
    }

    [TestMethod]
    public void WideFloatMatrix_ThroughSgemm_MatchesToFp32Precision()
    {
        const int m = 30, n = 90;
        double[] sigma = [4, 2, 1, 0.5, 0.25];
        double[] a = WithSingularValues(m, n, sigma, seed: 43);
        float[] af = a.Select(x => (float)x).ToArray();
        var svd = RandomizedSvd.Compute(af, m, n, 3, oversampling: 5, powerIterations: 1, seed: 3);
        AssertClose([4, 2, 1], svd.SingularValues, 2e-6, "σ");
        Assert.IsTrue(OrthonormalityError(svd.U, m, 3) < 1e-12);
    }

    [TestMethod]
    public void RankOutOfRange_IsRejected()
    {
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => RandomizedSvd.Compute(new double[12], 3, 4, rank: 4, matrixName: "W"));
        StringAssert.Contains(ex.Message, "'W'");
    }
}
