using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class CholeskyFactorTests
{
    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(7)]
    [DataRow(40)]
    public void Factor_LogDet_Solve_And_Inverse_MatchMathNet(int n)
    {
        double[] a = Spd(n, seed: 10 + n);
        var reference = ToMathNet(a, n, n);
        var factor = CholeskyFactor.Compute(a, n, "A");

        AssertClose(RowMajor(reference.Cholesky().Factor), factor.Lower, 1e-12 * n, "L");
        Assert.AreEqual(0.0, factor.JitterAdded);
        Assert.AreEqual(reference.Cholesky().DeterminantLn, factor.LogDeterminant(), 1e-10 * n);

        double[] b = Gaussian(n, 3, seed: 99);
        var expected = reference.Solve(ToMathNet(b, n, 3));
        AssertClose(RowMajor(expected), factor.Solve(b, 3), 1e-10, "A⁻¹B");
        AssertClose(RowMajor(reference.Inverse()), factor.Inverse(), 1e-10, "A⁻¹");
    }

    [TestMethod]
    public void HandComputed_2x2()
    {
        // [[4, 2], [2, 3]] = L Lᵀ with L = [[2, 0], [1, √2]]; det = 8.
        var factor = CholeskyFactor.Compute([4, 2, 2, 3], 2);
        AssertClose([2, 0, 1, Math.Sqrt(2)], factor.Lower, 1e-15, "L");
        Assert.AreEqual(Math.Log(8), factor.LogDeterminant(), 1e-15);
        // A x = [2, 1] ⇒ x = [0.5, 0].
        AssertClose([0.5, 0], factor.Solve([2, 1]), 1e-15, "x");
    }

    [TestMethod]
    public void IllConditionedHilbertMatrix_MatchesTheExactLogDetWithinItsConditioning()
    {
        // Hilbert matrix H_ij = 1/(i + j + 1), n = 8: condition number ≈ 1.5e10, log det ≈ −74.98.
        const int n = 8;
        double[] h = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++) h[i * n + j] = 1.0 / (i + j + 1);
        }
        var reference = ToMathNet(h, n, n);
        var factor = CholeskyFactor.Compute(h, n, "Hilbert");
        // Exact log det of this double matrix (entries as rounded), by rational Gaussian elimination in Python:
        // Fraction(1.0/(i+j+1)) entries, det = Π pivots, log(num) − log(den). Rounding in any O(n³) algorithm
        // perturbs it by up to about cond·ε ≈ 2e-6; MathNet is 6.7e-9 off, this factorisation (compensated pivots)
        // 3.8e-9. Likewise L[7,7] = √(last exact pivot) = 7.523277694414593e-05: MathNet 3.7e-9 relative, ours 2.2e-9.
        const double exactLogDet = -74.97842732625071;
        Assert.AreEqual(exactLogDet, factor.LogDeterminant(), 1e-8);
        Assert.AreEqual(7.523277694414593e-05, factor.Lower[63], 5e-9 * 7.523277694414593e-05);
        Assert.AreEqual(reference.Cholesky().DeterminantLn, factor.LogDeterminant(), 2e-8);
        AssertClose(RowMajor(reference.Cholesky().Factor), factor.Lower, 1e-12, "L");
        // Solve H x = H·1: the error is bounded by cond·ε ≈ 3e-6 relative.
        double[] b = RowMajor(reference * Matrix<double>.Build.Dense(n, 1, 1.0));
        double[] x = factor.Solve(b);
        for (int i = 0; i < n; i++) Assert.AreEqual(1.0, x[i], 1e-4, $"x[{i}]");
    }

    [TestMethod]
    public void OnlyTheLowerTriangleIsRead()
    {
        var factor = CholeskyFactor.Compute([4, 1e9, 2, 3], 2);
        AssertClose([2, 0, 1, Math.Sqrt(2)], factor.Lower, 1e-15, "L");
    }

    [TestMethod]
    public void Indefinite_Throws_NamingTheMatrixAndPivot()
    {
        var ex = Assert.ThrowsExactly<MatrixNotPositiveDefiniteException>(() => CholeskyFactor.Compute([1, 2, 2, 1], 2, "posterior precision"));
        StringAssert.Contains(ex.Message, "posterior precision");
        StringAssert.Contains(ex.Message, "pivot 1");
        Assert.AreEqual(1, ex.PivotIndex);
        Assert.AreEqual(-3, ex.PivotValue, 1e-15);
    }

    [TestMethod]
    public void SingularPsd_FailsStrict_ButSucceedsWithJitterRetry()
    {
        // Rank-2 PSD 5×5 matrix: strictly singular, so the plain factorisation must fail at a late pivot.
        var b = ToMathNet(Gaussian(5, 2, seed: 3), 5, 2);
        double[] a = RowMajor(b * b.Transpose());
        Assert.ThrowsExactly<MatrixNotPositiveDefiniteException>(() => CholeskyFactor.Compute(a, 5, "G"));

        var factor = CholeskyFactor.Compute(a, 5, "G", CholeskyOptions.WithJitter);
        Assert.IsTrue(factor.JitterAdded > 0, "jitter must have been needed");
        double meanDiag = Enumerable.Range(0, 5).Average(i => a[i * 6]);
        Assert.IsTrue(factor.JitterAdded <= 1e-5 * meanDiag * 1.0000001, $"jitter {factor.JitterAdded} above the documented cap");
        // The factor reproduces A + δI exactly (to rounding).
        var l = ToMathNet(factor.Lower.ToArray(), 5, 5);
        var expected = ToMathNet(a, 5, 5) + factor.JitterAdded * Matrix<double>.Build.DenseIdentity(5);
        AssertClose(RowMajor(expected), RowMajor(l * l.Transpose()), 1e-12, "L Lᵀ");
    }

    [TestMethod]
    public void NegativeDefinite_FailsEvenWithJitter_AndReportsIt()
    {
        var ex = Assert.ThrowsExactly<MatrixNotPositiveDefiniteException>(
            () => CholeskyFactor.Compute([-1, 0, 0, -1], 2, "H", CholeskyOptions.WithJitter));
        StringAssert.Contains(ex.Message, "'H'");
        StringAssert.Contains(ex.Message, "7 attempts");
        Assert.IsTrue(ex.Jitter > 0);
    }

    [TestMethod]
    public void BadInput_IsRejectedWithTheMatrixName()
    {
        var shape = Assert.ThrowsExactly<ArgumentException>(() => CholeskyFactor.Compute([1, 2, 3], 2, "A_factor"));
        StringAssert.Contains(shape.Message, "A_factor");
        var nan = Assert.ThrowsExactly<ArgumentException>(() => CholeskyFactor.Compute([1, 0, double.NaN, 1], 2, "A_factor"));
        StringAssert.Contains(nan.Message, "row 1, column 0");
    }

    [TestMethod]
    public void FloatEntryPoint_AndLowerMultiply()
    {
        var factor = CholeskyFactor.Compute([4f, 2f, 2f, 3f], 2);
        var y = new double[2];
        factor.MultiplyLower([1, 1], y);
        AssertClose([2, 1 + Math.Sqrt(2)], y, 1e-15, "L z");
    }
}
