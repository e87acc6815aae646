using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;
using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class ThinQrDecompositionTests
{
    [TestMethod]
    [DataRow(1, 1)]
    [DataRow(5, 3)]
    [DataRow(30, 30)]
    [DataRow(200, 12)]
    public void MatchesMathNet_UpToColumnSigns(int m, int n)
    {
        double[] a = Gaussian(m, n, seed: m * 31 + n);
        var reference = ToMathNet(a, m, n).QR(QRMethod.Thin);
        var qr = ThinQrDecomposition.Compute(a, m, n, "A");
        for (int k = 0; k < n; k++)
        {
            // Flip MathNet's k-th column/row so that R[k, k] ≥ 0 like ours; then both factors are unique.
            double sign = reference.R[k, k] < 0 ? -1 : 1;
            for (int j = k; j < n; j++) Assert.AreEqual(sign * reference.R[k, j], qr.R[k * n + j], 1e-12, $"R[{k},{j}]");
            for (int i = 0; i < m; i++) Assert.AreEqual(sign * reference.Q[i, k], qr.Q[i * n + k], 1e-12, $"Q[{i},{k}]");
            Assert.IsTrue(qr.R[k * n + k] >= 0);
            for (int j = 0; j < k; j++) Assert.AreEqual(0, qr.R[k * n + j], "R is upper triangular");
        }
        Assert.IsTrue(OrthonormalityError(qr.Q, m, n) < 1e-13);
    }

    [TestMethod]
    public void HandComputed_3x2()
    {
        // Columns (3, 4, 0) and (1, 0, 2), by Gram–Schmidt by hand:
        // q0 = (0.6, 0.8, 0); r01 = q0·a1 = 0.6; a1 − 0.6 q0 = (0.64, −0.48, 2); r11 = √(0.4096 + 0.2304 + 4) = √4.64.
        var qr = ThinQrDecomposition.Compute([3, 1, 4, 0, 0, 2], 3, 2);
        double r11 = Math.Sqrt(4.64);
        AssertClose([5, 0.6, 0, r11], qr.R, 1e-15, "R");
        AssertClose([0.6, 0.64 / r11, 0.8, -0.48 / r11, 0, 2 / r11], qr.Q, 1e-15, "Q");
    }

    [TestMethod]
    public void RankDeficient_QStaysOrthonormal_AndReconstructs()
    {
        // Third column = first + second; fourth column zero.
        const int m = 10, n = 4;
        double[] a = Gaussian(m, n, seed: 4);
        for (int i = 0; i < m; i++)
        {
            a[i * n + 2] = a[i * n] + a[i * n + 1];
            a[i * n + 3] = 0;
        }
        var qr = ThinQrDecomposition.Compute(a, m, n);
        Assert.IsTrue(OrthonormalityError(qr.Q, m, n) < 1e-13);
        Assert.AreEqual(0, qr.R[2 * n + 2], 1e-13);
        Assert.AreEqual(0, qr.R[3 * n + 3], 1e-13);
        var product = ToMathNet(qr.Q.ToArray(), m, n) * ToMathNet(qr.R.ToArray(), n, n);
        AssertClose(a, RowMajor(product), 1e-13, "QR");
    }

    [TestMethod]
    public void OrthonormalizeRows_SpansTheRowSpace_GramSchmidtOrder()
    {
        const int r = 4, d = 50;
        double[] a = Gaussian(r, d, seed: 12);
        double[] q = ThinQrDecomposition.OrthonormalizeRows(a, r, d);
        var qm = ToMathNet(q, r, d);
        Assert.IsTrue((qm * qm.Transpose() - Matrix<double>.Build.DenseIdentity(r)).Enumerate().Max(Math.Abs) < 1e-13);
        // Row 0 is row 0 of A normalised; each original row is reproduced by projecting onto the new rows.
        var am = ToMathNet(a, r, d);
        AssertClose(RowMajor(am.Row(0).Normalize(2).ToRowMatrix()), q.AsSpan(0, d), 1e-14, "q0");
        AssertClose(a, RowMajor(am * qm.Transpose() * qm), 1e-12, "projection");
    }

    [TestMethod]
    public void WideInput_IsRejectedWithAHint()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => ThinQrDecomposition.Compute(new double[6], 2, 3, "lora_A"));
        StringAssert.Contains(ex.Message, "lora_A");
        StringAssert.Contains(ex.Message, "transpose");
    }
}
