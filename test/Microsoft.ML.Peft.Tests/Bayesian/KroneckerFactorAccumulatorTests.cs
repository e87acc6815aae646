using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.Bayesian;
using static Microsoft.ML.Peft.Tests.LinearAlgebra.TestMatrices;

namespace Microsoft.ML.Peft.Tests.Bayesian;

[TestClass]
public sealed class KroneckerFactorAccumulatorTests
{
    [TestMethod]
    public void ExactFactor_IsTheMeanOuterProduct_WithBiasColumn()
    {
        double[] batch1 = Gaussian(5, 3, seed: 1), batch2 = Gaussian(4, 3, seed: 2);
        var acc = new KroneckerFactorAccumulator(3, appendBias: true, name: "A");
        acc.AddRows(batch1, 5);
        acc.AddRows(batch2.Select(x => (float)x).ToArray(), 4);
        Assert.AreEqual(4, acc.Size);
        Assert.AreEqual(9, acc.SampleCount);
        Assert.IsFalse(acc.IsLowRank);

        // Reference: rows with a 1 appended, Σ a aᵀ / N by MathNet.
        var rows = Matrix<double>.Build.Dense(9, 4, (i, j) => j == 3 ? 1 : i < 5 ? batch1[i * 3 + j] : (float)batch2[(i - 5) * 3 + j]);
        double[] expected = RowMajor(rows.TransposeThisAndMultiply(rows) / 9);
        AssertClose(expected, acc.MeanMatrix(), 1e-14, "A_mean");
        // The eigenbasis reproduces the same matrix, with descending non-negative eigenvalues.
        KroneckerFactorEigenbasis eig = acc.ToEigenbasis();
        Assert.AreEqual(4, eig.Rank);
        Assert.IsFalse(eig.IsLowRank);
        AssertClose(expected, eig.ToMatrix(), 1e-13, "Q Λ Qᵀ");
        for (int j = 1; j < 4; j++) Assert.IsTrue(eig.Values[j] <= eig.Values[j - 1] && eig.Values[j] >= 0);
        // Bias entry: mean of 1·1 = 1.
        Assert.AreEqual(1.0, acc.MeanMatrix()[15], 1e-15);
    }

    [TestMethod]
    public void LowRank_ExactWhileTheDataRankFitsInK()
    {
        // Rows in a 3-dimensional subspace of R^12; rank k = 4 ≥ 3, so the incremental SVD loses nothing.
        var basis = ToMathNet(Gaussian(3, 12, seed: 3), 3, 12);
        var acc = new KroneckerFactorAccumulator(12, lowRankThreshold: 10, lowRankRank: 4);
        Assert.IsTrue(acc.IsLowRank);
        var all = new List<double[]>();
        for (int b = 0; b < 4; b++)
        {
            double[] rows = RowMajor(ToMathNet(Gaussian(6, 3, seed: 10 + b), 6, 3) * basis);
            all.Add(rows);
            acc.AddRows(rows, 6);
        }
        var stacked = ToMathNet(all.SelectMany(r => r).ToArray(), 24, 12);
        double[] expected = RowMajor(stacked.TransposeThisAndMultiply(stacked) / 24);
        AssertClose(expected, acc.MeanMatrix(), 1e-12, "A_mean");
        KroneckerFactorEigenbasis eig = acc.ToEigenbasis();
        Assert.AreEqual(4, eig.Rank);
        Assert.IsTrue(eig.IsLowRank);
        Assert.AreEqual(0, eig.Values[3], 1e-12, "the 4th direction is empty");
    }

    [TestMethod]
    public void LowRank_FoldsEachBatchAsTheTopKOfPreviousEstimatePlusNewRows()
    {
        const int d = 10, k = 3;
        double[] x1 = Gaussian(7, d, seed: 4), x2 = Gaussian(5, d, seed: 5);
        var acc = new KroneckerFactorAccumulator(d, lowRankThreshold: d, lowRankRank: k);
        acc.AddRows(x1, 7);
        var m1 = ToMathNet(x1, 7, d);
        var f1 = TopK(m1.TransposeThisAndMultiply(m1), k);
        AssertClose(RowMajor(f1 / 7), acc.MeanMatrix(), 1e-12, "after batch 1");

        acc.AddRows(x2, 5);
        var m2 = ToMathNet(x2, 5, d);
        var f2 = TopK(f1 + m2.TransposeThisAndMultiply(m2), k);
        AssertClose(RowMajor(f2 / 12), acc.MeanMatrix(), 1e-12, "after batch 2");
        Assert.AreEqual(k, acc.LowRankRootColumns);
        // The root reproduces the running (unnormalised) estimate.
        var root = ToMathNet(acc.LowRankRoot.ToArray(), d, k);
        AssertClose(RowMajor(f2), RowMajor(root * root.Transpose()), 1e-12, "L Lᵀ");
    }

    [TestMethod]
    public void SinglePrecisionGram_MatchesTheDoubleGram_AcrossChunks()
    {
        // 150 rows = chunks of 64, 64 and 22 rows: every chunk must be counted once, symmetrically.
        const int rows = 150, width = 5;
        float[] x = Gaussian(rows, width, seed: 30).Select(v => (float)v).ToArray();
        var reference = ToMathNet(x.Select(v => (double)v).ToArray(), rows, width);
        double[] expected = RowMajor(reference.TransposeThisAndMultiply(reference));   // entries up to ~190
        double[] gram = KroneckerFactorAccumulator.SinglePrecisionGram(x, rows, width);
        AssertClose(expected, gram, 1e-4, "XᵀX");   // float sums of ≤ 64 products: ~1e-5 here
        for (int i = 0; i < width; i++)
        {
            for (int j = 0; j < i; j++) Assert.AreEqual(gram[j * width + i], gram[i * width + j], $"symmetric at ({i}, {j})");
        }

        // Two Grams added to an exact factor give the mean over all their rows.
        var acc = new KroneckerFactorAccumulator(width, name: "A");
        acc.AddGram(KroneckerFactorAccumulator.SinglePrecisionGram(x.AsSpan(0, 100 * width), 100, width), 100);
        acc.AddGram(KroneckerFactorAccumulator.SinglePrecisionGram(x.AsSpan(100 * width), 50, width), 50);
        Assert.AreEqual(150, acc.SampleCount);
        AssertClose(expected.Select(v => v / rows).ToArray(), acc.MeanMatrix(), 1e-6, "A_mean");
    }

    [TestMethod]
    public void SinglePrecisionGram_RankDeficientFactor_HasZeroNullEigenvalues()
    {
        // Rows in a 2-dimensional subspace of R^6: float rounding leaves tiny negative eigenvalues, which the
        // single-precision tolerance must clamp to 0 rather than reject as indefinite.
        const int rows = 200, width = 6;
        var basis = ToMathNet(Gaussian(2, width, seed: 31), 2, width);
        float[] x = RowMajor(ToMathNet(Gaussian(rows, 2, seed: 32), rows, 2) * basis).Select(v => (float)v).ToArray();
        var acc = new KroneckerFactorAccumulator(width, name: "A");
        acc.AddGram(KroneckerFactorAccumulator.SinglePrecisionGram(x, rows, width), rows);
        KroneckerFactorEigenbasis eig = acc.ToEigenbasis();
        var stacked = ToMathNet(x.Select(v => (double)v).ToArray(), rows, width);
        var evd = (stacked.TransposeThisAndMultiply(stacked) / rows).Evd(Symmetricity.Symmetric);
        Assert.AreEqual(evd.EigenValues[width - 1].Real, eig.Values[0], 1e-5 * eig.Values[0], "largest eigenvalue");
        Assert.AreEqual(evd.EigenValues[width - 2].Real, eig.Values[1], 1e-5 * eig.Values[0], "second eigenvalue");
        for (int j = 2; j < width; j++) Assert.AreEqual(0, eig.Values[j], 1e-5 * eig.Values[0], $"null eigenvalue {j}");
    }

    [TestMethod]
    public void AddGram_RejectsLowRankFactorsAndWrongShapes()
    {
        var lowRank = new KroneckerFactorAccumulator(12, lowRankThreshold: 10, lowRankRank: 4, name: "G of v_proj");
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => lowRank.AddGram(new double[144], 3));
        StringAssert.Contains(ex.Message, "G of v_proj");
        var exact = new KroneckerFactorAccumulator(3, name: "A of q_proj");
        var shape = Assert.ThrowsExactly<ArgumentException>(() => exact.AddGram(new double[8], 3));
        StringAssert.Contains(shape.Message, "A of q_proj");
        Assert.AreEqual(0, exact.SampleCount);
    }

    [TestMethod]
    public void BadInput_NamesTheFactor()
    {
        var acc = new KroneckerFactorAccumulator(3, name: "layers.0.q_proj.lora_A input");
        var shape = Assert.ThrowsExactly<ArgumentException>(() => acc.AddRows(new double[7], 2));
        StringAssert.Contains(shape.Message, "layers.0.q_proj.lora_A input");
        var nan = Assert.ThrowsExactly<ArgumentException>(() => acc.AddRows([1, 2, 3, 4, double.NaN, 6], 2));
        StringAssert.Contains(nan.Message, "row 1, column 1");
        Assert.ThrowsExactly<InvalidOperationException>(() => acc.ToEigenbasis());
    }

    [TestMethod]
    public void NegativeDefiniteFactor_IsRejected()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => KroneckerFactorEigenbasis.FromSymmetricMatrix([1, 0, 0, -1], 2, "G"));
        StringAssert.Contains(ex.Message, "'G'");
        // Rounding-level negatives are clamped to 0.
        var eig = KroneckerFactorEigenbasis.FromSymmetricMatrix([1, 0, 0, -1e-14], 2, "G");
        Assert.AreEqual(0, eig.Values[1]);
    }

    /// <summary>Best rank-k approximation of a symmetric PSD matrix (top-k eigenpairs, by MathNet).</summary>
    private static Matrix<double> TopK(Matrix<double> f, int k)
    {
        var evd = f.Evd(Symmetricity.Symmetric);
        int n = f.RowCount;
        var result = Matrix<double>.Build.Dense(n, n);
        for (int j = n - k; j < n; j++)
        {
            var v = evd.EigenVectors.Column(j);
            result += evd.EigenValues[j].Real * v.OuterProduct(v);
        }
        return result;
    }
}
