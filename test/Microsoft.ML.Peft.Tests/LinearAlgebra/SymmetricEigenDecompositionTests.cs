using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class SymmetricEigenDecompositionTests
{
    [TestMethod]
    [DataRow(1)]
    [DataRow(2)]
    [DataRow(3)]
    [DataRow(10)]
    [DataRow(60)]
    public void RandomSymmetric_MatchesMathNet_ValuesAndVectorsUpToSign(int n)
    {
        double[] a = Symmetric(n, seed: 100 + n);
        var reference = ToMathNet(a, n, n).Evd(Symmetricity.Symmetric);
        var eig = SymmetricEigenDecomposition.Compute(a, n, "A");

        double[] expectedValues = reference.EigenValues.Select(c => c.Real).ToArray(); // MathNet: ascending for symmetric
        AssertClose(expectedValues, eig.Values, 1e-12 * Math.Max(1, n), "λ");
        for (int j = 0; j < n; j++)
        {
            AssertEqualUpToSign(reference.EigenVectors.Column(j).ToArray(), Column(eig.Vectors, n, n, j), 1e-9, $"v{j}");
        }
        AssertDecomposition(a, n, eig, 1e-12);
    }

    [TestMethod]
    public void HandComputed_2x2()
    {
        // [[2, 1], [1, 2]]: eigenvalues 1 and 3 with vectors (1, −1)/√2 and (1, 1)/√2.
        var eig = SymmetricEigenDecomposition.Compute([2, 1, 1, 2], 2);
        AssertClose([1, 3], eig.Values, 1e-15, "λ");
        double r = Math.Sqrt(0.5);
        AssertEqualUpToSign([r, -r], Column(eig.Vectors, 2, 2, 0), 1e-15, "v0");
        AssertEqualUpToSign([r, r], Column(eig.Vectors, 2, 2, 1), 1e-15, "v1");
    }

    [TestMethod]
    public void IllConditioned_SmallEigenvaluesKeepAbsoluteAccuracy()
    {
        const int n = 12;
        double[] lambda = Enumerable.Range(0, n).Select(i => Math.Pow(10, -i)).ToArray(); // 1 … 1e-11
        var q = RandomOrthonormalColumns(n, n, seed: 7);
        double[] a = RowMajor(q * Matrix<double>.Build.DiagonalOfDiagonalArray(lambda) * q.Transpose());
        var eig = SymmetricEigenDecomposition.Compute(a, n);
        double[] expected = lambda.OrderBy(x => x).ToArray();
        // Backward stability bounds the absolute error by a few ε·‖A‖.
        AssertClose(expected, eig.Values, 1e-14, "λ");
        AssertDecomposition(a, n, eig, 1e-14);
    }

    [TestMethod]
    public void RepeatedAndZeroEigenvalues_GiveAnOrthonormalBasis()
    {
        // Rank-2 PSD 8×8 (six zero eigenvalues) plus the identity's fully repeated spectrum.
        var b = ToMathNet(Gaussian(8, 2, seed: 8), 8, 2);
        double[] lowRank = RowMajor(b * b.Transpose());
        var eig = SymmetricEigenDecomposition.Compute(lowRank, 8);
        for (int j = 0; j < 6; j++) Assert.AreEqual(0, eig.Values[j], 1e-13, $"λ{j}");
        AssertDecomposition(lowRank, 8, eig, 1e-13);

        var identity = SymmetricEigenDecomposition.Compute(DenseMatrix.Identity(5), 5);
        AssertClose([1, 1, 1, 1, 1], identity.Values, 0, "λ(I)");
        AssertDecomposition(DenseMatrix.Identity(5), 5, identity, 1e-15);
    }

    [TestMethod]
    public void Diagonal_And_AlreadyTridiagonal_Inputs()
    {
        var diag = SymmetricEigenDecomposition.Compute([3, 0, 0, 0, -1, 0, 0, 0, 2], 3);
        AssertClose([-1, 2, 3], diag.Values, 0, "λ");
        // Sign convention: largest component positive, so these are exact unit vectors.
        AssertClose([0, 0, 1, 1, 0, 0, 0, 1, 0], diag.Vectors, 0, "V");

        // Tridiagonal Toeplitz [2, −1]: λ_k = 2 − 2cos(kπ/(n+1)).
        const int n = 20;
        var t = new double[n * n];
        for (int i = 0; i < n; i++)
        {
            t[i * n + i] = 2;
            if (i > 0) t[i * n + i - 1] = t[(i - 1) * n + i] = -1;
        }
        var eig = SymmetricEigenDecomposition.Compute(t, n);
        double[] expected = Enumerable.Range(1, n).Select(k => 2 - 2 * Math.Cos(k * Math.PI / (n + 1))).ToArray();
        AssertClose(expected, eig.Values, 1e-14, "λ");
    }

    [TestMethod]
    public void OnlyLowerTriangleIsRead_AndBadInputIsNamed()
    {
        var eig = SymmetricEigenDecomposition.Compute([2, 1e9, 1, 2], 2);
        AssertClose([1, 3], eig.Values, 1e-15, "λ");
        var ex = Assert.ThrowsExactly<ArgumentException>(() => SymmetricEigenDecomposition.Compute([1, 0, double.PositiveInfinity, 1], 2, "kfac A"));
        StringAssert.Contains(ex.Message, "kfac A");
        StringAssert.Contains(ex.Message, "row 1, column 0");
    }

    [TestMethod]
    public void FloatEntryPoint()
    {
        var eig = SymmetricEigenDecomposition.Compute([2f, 1f, 1f, 2f], 2);
        AssertClose([1, 3], eig.Values, 1e-15, "λ");
    }

    /// <summary>‖A·V − V·Λ‖_max and ‖VᵀV − I‖_max small relative to ‖A‖.</summary>
    private static void AssertDecomposition(double[] a, int n, SymmetricEigenDecomposition eig, double relativeTolerance)
    {
        var am = ToMathNet(a, n, n);
        var v = ToMathNet(eig.Vectors.ToArray(), n, n);
        var residual = am * v - v * Matrix<double>.Build.DiagonalOfDiagonalArray(eig.Values.ToArray());
        double scale = Math.Max(1e-300, am.L2Norm());
        Assert.IsTrue(residual.Enumerate().Max(Math.Abs) <= relativeTolerance * scale * Math.Max(1, n),
            $"residual {residual.Enumerate().Max(Math.Abs)}");
        Assert.IsTrue(OrthonormalityError(eig.Vectors, n, n) <= 1e-13 * Math.Max(1, n), "VᵀV ≠ I");
        for (int j = 1; j < n; j++) Assert.IsTrue(eig.Values[j] >= eig.Values[j - 1], "ascending");
    }
}
