using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class SingularValueDecompositionTests
{
    [TestMethod]
    [DataRow(1, 1)]
    [DataRow(1, 7)]
    [DataRow(7, 1)]
    [DataRow(6, 6)]
    [DataRow(40, 15)]
    [DataRow(15, 40)]
    [DataRow(300, 20)]
    public void RandomMatrices_MatchMathNet(int m, int n)
    {
        double[] a = Gaussian(m, n, seed: 1000 + 7 * m + n);
        var reference = ToMathNet(a, m, n).Svd(computeVectors: true);
        var svd = SingularValueDecomposition.ComputeThin(a, m, n, "W");
        int k = Math.Min(m, n);
        Assert.AreEqual(k, svd.Rank);
        AssertClose(reference.S.ToArray(), svd.SingularValues, 1e-12 * Math.Max(m, n), "σ");
        for (int j = 0; j < k; j++)
        {
            // Gaussian matrices have distinct σ almost surely, so each pair is unique up to a joint sign.
            double[] uRef = reference.U.Column(j).ToArray(), vRef = reference.VT.Row(j).ToArray();
            double[] u = Column(svd.U, m, k, j), v = svd.Vt.Slice(j * n, n).ToArray();
            double sign = Math.Sign(uRef.Zip(u, (x, y) => x * y).Sum());
            for (int i = 0; i < m; i++) Assert.AreEqual(uRef[i], sign * u[i], 1e-9, $"u{j}[{i}]");
            for (int i = 0; i < n; i++) Assert.AreEqual(vRef[i], sign * v[i], 1e-9, $"v{j}[{i}]");
        }
        AssertThinSvd(a, m, n, svd, 1e-13);
    }

    [TestMethod]
    public void HandComputed_2x2()
    {
        // [[3, 0], [4, 5]]: AᵀA = [[25, 20], [20, 25]] has eigenvalues 45 and 5 ⇒ σ = 3√5, √5.
        var svd = SingularValueDecomposition.ComputeThin([3, 0, 4, 5], 2, 2);
        AssertClose([3 * Math.Sqrt(5), Math.Sqrt(5)], svd.SingularValues, 1e-14, "σ");
        double r = Math.Sqrt(0.5);
        AssertEqualUpToSign([r, r], svd.Vt[..2].ToArray(), 1e-15, "v0");
    }

    [TestMethod]
    public void IllConditioned_SmallSingularValuesToHighRelativeAccuracy()
    {
        double[] sigma = Enumerable.Range(0, 10).Select(i => Math.Pow(10, -1.3 * i)).ToArray(); // 1 … 1e-11.7
        double[] a = WithSingularValues(25, 10, sigma, seed: 21);
        var svd = SingularValueDecomposition.ComputeThin(a, 25, 10);
        for (int j = 0; j < 10; j++)
        {
            // The test matrix itself carries ~ε·‖A‖ rounding, so compare with that absolute floor.
            Assert.AreEqual(sigma[j], svd.SingularValues[j], 2e-15 + 1e-9 * sigma[j], $"σ{j}");
        }
        AssertThinSvd(a, 25, 10, svd, 1e-14);
    }

    [TestMethod]
    public void RankDeficient_AndZero_Matrices()
    {
        double[] a = WithSingularValues(12, 9, [5, 2, 0.5], seed: 31); // rank 3
        var svd = SingularValueDecomposition.ComputeThin(a, 12, 9);
        AssertClose([5, 2, 0.5], svd.SingularValues[..3], 1e-13, "σ");
        for (int j = 3; j < 9; j++) Assert.AreEqual(0, svd.SingularValues[j], 1e-13, $"σ{j}");
        AssertThinSvd(a, 12, 9, svd, 1e-13);

        var zero = SingularValueDecomposition.ComputeThin(new double[4 * 3], 4, 3);
        AssertClose([0, 0, 0], zero.SingularValues, 0, "σ(0)");
        Assert.IsTrue(OrthonormalityError(zero.U, 4, 3) < 1e-15, "U completed to an orthonormal set");
        Assert.IsTrue(OrthonormalityError(DenseMatrix.Transpose(zero.Vt, 3, 3), 3, 3) < 1e-15);
    }

    [TestMethod]
    public void DuplicateColumns_ExactZeroSingularValue_CompletedOrthonormally()
    {
        // Two identical columns: the Jacobi rotation makes one exactly zero, which must be completed.
        double[] a = [1, 1, 2, 2, 3, 3];
        var svd = SingularValueDecomposition.ComputeThin(a, 3, 2);
        AssertClose([Math.Sqrt(28), 0], svd.SingularValues, 1e-14, "σ");
        Assert.IsTrue(OrthonormalityError(svd.U, 3, 2) < 1e-15);
        AssertClose(a, svd.Reconstruct(), 1e-14, "UΣVᵀ");
    }

    [TestMethod]
    public void Truncate_GivesTheBestLowRankApproximation()
    {
        double[] sigma = [9, 4, 1, 0.25];
        double[] a = WithSingularValues(8, 6, sigma, seed: 5);
        var top2 = SingularValueDecomposition.ComputeThin(a, 8, 6).Truncate(2);
        Assert.AreEqual(2, top2.Rank);
        var residual = ToMathNet(a, 8, 6) - ToMathNet(top2.Reconstruct(), 8, 6);
        // Eckart–Young: the Frobenius error of the best rank-2 approximation is √(1² + 0.25²).
        Assert.AreEqual(Math.Sqrt(1 + 0.0625), residual.FrobeniusNorm(), 1e-13);
    }

    [TestMethod]
    public void FloatEntryPoint_AndNamedErrors()
    {
        var svd = SingularValueDecomposition.ComputeThin([3f, 0f, 4f, 5f], 2, 2);
        Assert.AreEqual(3 * Math.Sqrt(5), svd.SingularValues[0], 1e-14);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => SingularValueDecomposition.ComputeThin([1, double.NaN], 1, 2, "q_proj.weight"));
        StringAssert.Contains(ex.Message, "q_proj.weight");
    }

    internal static void AssertThinSvd(double[] a, int m, int n, SingularValueDecomposition svd, double relativeTolerance)
    {
        int k = svd.Rank;
        double norm = Math.Max(1e-300, ToMathNet(a, m, n).L2Norm());
        double error = MaxAbsDiff(a, svd.Reconstruct());
        Assert.IsTrue(error <= relativeTolerance * norm * Math.Max(m, n), $"reconstruction error {error}");
        Assert.IsTrue(OrthonormalityError(svd.U, m, k) < 1e-13, "UᵀU ≠ I");
        Assert.IsTrue(OrthonormalityError(DenseMatrix.Transpose(svd.Vt, k, n), n, k) < 1e-13, "VᵀV ≠ I");
        for (int j = 1; j < k; j++) Assert.IsTrue(svd.SingularValues[j] <= svd.SingularValues[j - 1], "descending");
    }
}
