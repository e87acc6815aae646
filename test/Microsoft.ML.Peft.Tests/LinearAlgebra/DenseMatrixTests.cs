using Microsoft.ML.Peft.LinearAlgebra;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.LinearAlgebra;

[TestClass]
public sealed class DenseMatrixTests
{
    [TestMethod]
    public void Products_MatchMathNet()
    {
        double[] a = Gaussian(7, 5, seed: 1), b = Gaussian(5, 4, seed: 2), c = Gaussian(7, 4, seed: 3), d = Gaussian(6, 5, seed: 4);
        var am = ToMathNet(a, 7, 5);
        AssertClose(RowMajor(am * ToMathNet(b, 5, 4)), DenseMatrix.Multiply(a, 7, 5, b, 4), 1e-13, "AB");
        AssertClose(RowMajor(am.Transpose() * ToMathNet(c, 7, 4)), DenseMatrix.MultiplyTransposeA(a, 7, 5, c, 4), 1e-13, "AᵀC");
        AssertClose(RowMajor(am * ToMathNet(d, 6, 5).Transpose()), DenseMatrix.MultiplyTransposeB(a, 7, 5, d, 6), 1e-13, "ADᵀ");
        AssertClose(RowMajor(am.Transpose()), DenseMatrix.Transpose(a, 7, 5), 0, "Aᵀ");
        AssertClose(RowMajor(am.Transpose() * am), DenseMatrix.Gram(a, 7, 5), 1e-13, "AᵀA");
        Assert.AreEqual(am.FrobeniusNorm(), DenseMatrix.FrobeniusNorm(a), 1e-14);
    }

    [TestMethod]
    public void FloatGram_ViaSgemm_IsSymmetricAndAccurate()
    {
        double[] a = Gaussian(20, 6, seed: 5);
        float[] af = a.Select(x => (float)x).ToArray();
        float[] gram = DenseMatrix.Gram(af, 20, 6);
        double[] exact = RowMajor(ToMathNet(af.Select(x => (double)x).ToArray(), 20, 6).TransposeThisAndMultiply(ToMathNet(af.Select(x => (double)x).ToArray(), 20, 6)));
        for (int i = 0; i < 6; i++)
        {
            for (int j = 0; j < 6; j++)
            {
                Assert.AreEqual(gram[j * 6 + i], gram[i * 6 + j], "symmetric");
                Assert.AreEqual(exact[i * 6 + j], gram[i * 6 + j], 1e-5, $"G[{i},{j}]");
            }
        }
    }

    [TestMethod]
    public void ShapeMismatch_NamesTheOperand()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => DenseMatrix.Multiply(new double[6], 2, 3, new double[5], 2));
        StringAssert.Contains(ex.Message, "'b'");
        StringAssert.Contains(ex.Message, "3×2");
    }
}
