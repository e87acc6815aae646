using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class MatMulTests
{
    /// <summary>Naive double-precision batched product of row-major logical arrays with batch broadcasting.</summary>
    private static double[] Naive(Tensor a, Tensor b)
    {
        var av = a.ToArray();
        var bv = b.ToArray();
        int m = a.Size(-2), k = a.Size(-1), n = b.Size(-1);
        var batch = Enumerable.Range(0, Math.Max(a.Rank, b.Rank) - 2).Select(i =>
        {
            int da = i - (Math.Max(a.Rank, b.Rank) - a.Rank) >= 0 ? a.Shape[i - (Math.Max(a.Rank, b.Rank) - a.Rank)] : 1;
            int db = i - (Math.Max(a.Rank, b.Rank) - b.Rank) >= 0 ? b.Shape[i - (Math.Max(a.Rank, b.Rank) - b.Rank)] : 1;
            return Math.Max(da, db);
        }).ToArray();
        int batchCount = batch.Aggregate(1, (x, y) => x * y);
        var result = new double[batchCount * m * n];
        for (int bi = 0; bi < batchCount; bi++)
        {
            int aIndex = BatchIndex(bi, batch, a.Shape[..^2].ToArray());
            int bIndex = BatchIndex(bi, batch, b.Shape[..^2].ToArray());
            for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)av[(aIndex * m + i) * k + p] * bv[(bIndex * k + p) * n + j];
                result[(bi * m + i) * n + j] = s;
            }
        }
        return result;
    }

    private static int BatchIndex(int flat, int[] batch, int[] own)
    {
        int index = 0, stride = 1;
        for (int d = batch.Length - 1; d >= 0; d--)
        {
            int coord = flat % batch[d];
            flat /= batch[d];
            int od = d - (batch.Length - own.Length);
            if (od >= 0)
            {
                if (own[od] != 1) index += coord * stride;
                stride *= own[od];
            }
        }
        return index;
    }

    private static void AssertMatches(Tensor a, Tensor b)
    {
        var expected = Naive(a, b);
        var actual = a.MatMul(b).ToArray();
        Assert.AreEqual(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-5 * (1 + Math.Abs(expected[i])), $"element {i}");
    }

    [TestMethod]
    public void MatMul_2D_HandComputed()
    {
        var a = Tensor.From([1, 2, 3, 4, 5, 6], 2, 3);
        var b = Tensor.From([7, 8, 9, 10, 11, 12], 3, 2);
        CollectionAssert.AreEqual(new float[] { 58, 64, 139, 154 }, a.MatMul(b).ToArray());
    }

    [TestMethod]
    public void MatMul_TransposedAndBatchedViews_MatchNaive()
    {
        var g = new Generator(3);
        AssertMatches(Tensor.Randn(g, 5, 7), Tensor.Randn(g, 7, 3));
        AssertMatches(Tensor.Randn(g, 7, 5).Transpose(0, 1), Tensor.Randn(g, 3, 7).Transpose(0, 1));
        AssertMatches(Tensor.Randn(g, 2, 4, 5, 6), Tensor.Randn(g, 2, 4, 6, 3));
        AssertMatches(Tensor.Randn(g, 2, 4, 5, 6), Tensor.Randn(g, 6, 3));                // folded rows
        AssertMatches(Tensor.Randn(g, 2, 1, 5, 6), Tensor.Randn(g, 3, 6, 2));             // broadcast batch
        AssertMatches(Tensor.Randn(g, 2, 6, 4, 5).Transpose(-1, -2), Tensor.Randn(g, 4, 6, 3).Transpose(0, 1)); // both transposed
        AssertMatches(Tensor.Randn(g, 4, 2, 5, 6).Transpose(0, 1), Tensor.Randn(g, 6, 3));  // non-foldable rows
    }

    [TestMethod]
    public void MatMul_TransposedOperands_AreNotCopied()
    {
        var g = new Generator(5);
        var a = Tensor.Randn(g, 8, 6).Transpose(0, 1);
        var b = Tensor.Randn(g, 4, 8).Transpose(0, 1);
        using var scope = TensorScope.Begin();
        _ = a.MatMul(b);
        Assert.AreEqual(1, scope.OwnedBufferCount, "only the output buffer may be allocated");
    }

    [TestMethod]
    public void MatMul_ShapeMismatch_NamesShapes()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => Tensor.Zeros(2, 3).MatMul(Tensor.Zeros(4, 5)));
        StringAssert.Contains(ex.Message, "matmul");
        StringAssert.Contains(ex.Message, "[2, 3]");
        StringAssert.Contains(ex.Message, "[4, 5]");
    }

    [TestMethod]
    public void MatMul_Gradients_MatchFiniteDifferences()
    {
        GradCheck.Check(t => t[0].MatMul(t[1]), [GradCheck.Param(1, 3, 4), GradCheck.Param(2, 4, 5)]);
        GradCheck.Check(t => t[0].MatMul(t[1]), [GradCheck.Param(3, 2, 3, 4), GradCheck.Param(4, 4, 2)]);
        GradCheck.Check(t => t[0].MatMul(t[1]), [GradCheck.Param(5, 2, 1, 3, 4), GradCheck.Param(6, 3, 4, 2)]);
        GradCheck.Check(t => t[0].Transpose(-1, -2).MatMul(t[1].Transpose(0, 1)), [GradCheck.Param(7, 2, 4, 3), GradCheck.Param(8, 5, 4)]);
    }

    [TestMethod]
    public void Linear_MatchesNaiveAndFiniteDifferences()
    {
        var g = new Generator(9);
        var x = Tensor.Randn(g, 2, 3, 4);
        var w = Tensor.Randn(g, 5, 4);
        var b = Tensor.Randn(g, 5);
        var y = x.Linear(w, b).ToArray();
        var xv = x.ToArray();
        var wv = w.ToArray();
        var bv = b.ToArray();
        for (int r = 0; r < 6; r++)
        for (int o = 0; o < 5; o++)
        {
            double s = bv[o];
            for (int i = 0; i < 4; i++) s += (double)xv[r * 4 + i] * wv[o * 4 + i];
            Assert.AreEqual(s, y[r * 5 + o], 1e-5);
        }
        GradCheck.Check(t => t[0].Linear(t[1], t[2]), [GradCheck.Param(10, 2, 3, 4), GradCheck.Param(11, 5, 4), GradCheck.Param(12, 5)]);
        GradCheck.Check(t => t[0].Linear(t[1]), [GradCheck.Param(13, 3, 4), GradCheck.Param(14, 2, 4)]);
        // A weight that is itself a transposed view and an input that is not contiguous.
        GradCheck.Check(t => t[0].Transpose(0, 1).Linear(t[1].Transpose(0, 1)), [GradCheck.Param(15, 4, 3), GradCheck.Param(16, 4, 2)]);
    }

    [TestMethod]
    public void Linear_Backward_MatchesDoublePrecisionFormulas()
    {
        // dx = g·W, dW = gᵀ·x, db = Σ_rows g, each evaluated in double from the same float inputs.
        var gen = new Generator(19);
        int rows = 37, inF = 23, outF = 29;
        var x = Tensor.Randn(gen, rows, inF).RequiresGrad_();
        var w = Tensor.Randn(gen, outF, inF).RequiresGrad_();
        var b = Tensor.Randn(gen, outF).RequiresGrad_();
        var g = Tensor.Randn(gen, rows, outF);
        x.Linear(w, b).Backward(g);
        float[] xv = x.ToArray(), wv = w.ToArray(), gv = g.ToArray();
        var dx = x.Grad!.ToArray();
        var dw = w.Grad!.ToArray();
        var db = b.Grad!.ToArray();
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < inF; i++)
            {
                double s = 0;
                for (int o = 0; o < outF; o++) s += (double)gv[r * outF + o] * wv[o * inF + i];
                Assert.AreEqual(s, dx[r * inF + i], 1e-5, $"dx[{r},{i}]");
            }
        for (int o = 0; o < outF; o++)
        {
            double sb = 0;
            for (int r = 0; r < rows; r++) sb += gv[r * outF + o];
            Assert.AreEqual(sb, db[o], 1e-5, $"db[{o}]");
            for (int i = 0; i < inF; i++)
            {
                double s = 0;
                for (int r = 0; r < rows; r++) s += (double)gv[r * outF + o] * xv[r * inF + i];
                Assert.AreEqual(s, dw[o * inF + i], 1e-5, $"dW[{o},{i}]");
            }
        }
    }

    [TestMethod]
    public void Linear_BFloat16AndFloat16Weights_MatchFloat32OfRoundedWeights()
    {
        var g = new Generator(17);
        var x = Tensor.Randn(g, 3, 8);
        var w = Tensor.Randn(g, 5, 8);
        foreach (var dtype in new[] { DType.BFloat16, DType.Float16 })
        {
            var low = w.To(dtype);
            var rounded = low.To(DType.Float32);
            GradCheck.AssertClose(x.Linear(rounded).ToArray(), x.Linear(low).ToArray(), 1e-5, $"linear {dtype}");
            GradCheck.AssertClose(x.MatMul(rounded.Transpose(0, 1)).ToArray(), x.MatMul(low.Transpose(0, 1)).ToArray(), 1e-5, $"matmul {dtype}");
            // Backward through a frozen low-precision weight reaches the input.
            var xg = x.Detach().RequiresGrad_();
            xg.Linear(low).Sum().Backward();
            var xr = x.Detach().RequiresGrad_();
            xr.Linear(rounded).Sum().Backward();
            GradCheck.AssertClose(xr.Grad!.ToArray(), xg.Grad!.ToArray(), 1e-5, $"dx {dtype}");
        }
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => w.To(DType.BFloat16).MatMul(x.Transpose(0, 1)));
        StringAssert.Contains(ex.Message, "left operand");
    }

    [TestMethod]
    public void Linear_FrozenWeight_GetsNoGradient()
    {
        var g = new Generator(18);
        var x = Tensor.Randn(g, 3, 4).RequiresGrad_();
        var w = Tensor.Randn(g, 2, 4);
        var b = Tensor.Randn(g, 2).RequiresGrad_();
        x.Linear(w, b).Sum().Backward();
        Assert.IsNull(w.Grad);
        Assert.IsNotNull(x.Grad);
        CollectionAssert.AreEqual(new float[] { 3, 3 }, b.Grad!.ToArray());
    }
}
