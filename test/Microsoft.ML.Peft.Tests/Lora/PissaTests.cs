using MathNet.Numerics.LinearAlgebra;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>PiSSA initialisation against MathNet's SVD as the reference.</summary>
[TestClass]
public sealed class PissaTests
{
    /// <summary>A [rows, cols] matrix with singular values 10·0.6^i (well separated) from random orthogonal factors.</summary>
    private static Matrix<double> DecayingSpectrum(int rows, int cols, int seed)
    {
        var rng = new Random(seed);
        var g1 = Matrix<double>.Build.Dense(rows, rows, (_, _) => rng.NextDouble() - 0.5);
        var g2 = Matrix<double>.Build.Dense(cols, cols, (_, _) => rng.NextDouble() - 0.5);
        var u = g1.QR().Q;
        var v = g2.QR().Q;
        int k = Math.Min(rows, cols);
        var s = Matrix<double>.Build.Dense(rows, cols);
        for (int i = 0; i < k; i++) s[i, i] = 10 * Math.Pow(0.6, i);
        return u * s * v.Transpose();
    }

    private static Matrix<double> Truncation(Matrix<double> w, int rank)
    {
        var svd = w.Svd(true);
        var result = Matrix<double>.Build.Dense(w.RowCount, w.ColumnCount);
        for (int i = 0; i < rank; i++) result += svd.S[i] * svd.U.Column(i).OuterProduct(svd.VT.Row(i));
        return result;
    }

    private static Matrix<double> ToMatrix(Tensor t) => Matrix<double>.Build.DenseOfRowMajor(t.Size(0), t.Size(1), t.ToArray().Select(v => (double)v));

    [TestMethod]
    [DataRow(12, 9, 3, false)]
    [DataRow(9, 12, 4, false)]
    [DataRow(16, 16, 5, true)]
    public void ExactPissa_SplitsWIntoTheTopRSubspaceAndAResidual(int rows, int cols, int rank, bool rsLora)
    {
        var rng = new Random(rows * 100 + cols);
        var w = Matrix<double>.Build.Dense(rows, cols, (_, _) => rng.NextDouble() * 2 - 1);
        var weight = Tensor.From(w.ToRowMajorArray().Select(v => (float)v).ToArray(), rows, cols);
        var wFloat = ToMatrix(weight);
        var layer = new LoraLinear(new Linear(weight));
        layer.UpdateLayer("default", rank, 8, 0, rsLora, LoraInit.Pissa, new Generator(1));
        layer.SetActiveAdapters(["default"], trainable: true);
        float s = layer.Scaling("default");
        var a = ToMatrix(layer.LoraA("default"));
        var b = ToMatrix(layer.LoraB("default"));
        var residual = ToMatrix(((Linear)layer.Base).Weight);

        // W_res + s·B·A reproduces W.
        Assert.IsTrue((residual + s * b * a - wFloat).Enumerate().Max(Math.Abs) <= 1e-5, "W_res + scaling·B·A == W");
        // s·B·A is the best rank-r approximation (the top singular subspace).
        var best = Truncation(wFloat, rank);
        double err = (s * b * a - best).Enumerate().Max(Math.Abs);
        Assert.IsTrue(err <= 1e-5, $"scaling·B·A vs MathNet's rank-{rank} truncation: {err}");
        // A = diag(√(σ/s))·V_rᵀ and B = U_r·diag(√(σ/s)): A·Aᵀ = BᵀB = diag(σ/s).
        var sigma = wFloat.Svd(true).S;
        var aat = a * a.Transpose();
        var btb = b.Transpose() * b;
        for (int i = 0; i < rank; i++)
        {
            for (int j = 0; j < rank; j++)
            {
                double expected = i == j ? sigma[i] / s : 0;
                Assert.AreEqual(expected, aat[i, j], 1e-5 * (1 + sigma[0] / s), $"A·Aᵀ[{i},{j}]");
                Assert.AreEqual(expected, btb[i, j], 1e-5 * (1 + sigma[0] / s), $"BᵀB[{i},{j}]");
            }
        }
        // The layer's function is unchanged at init.
        var x = Tensor.Randn(new Generator(2), 3, cols);
        Tensor y;
        using (Autograd.NoGrad()) y = layer.Forward(x);
        var expectedY = ToMatrix(x) * wFloat.Transpose();
        Assert.IsTrue((ToMatrix(y) - expectedY).Enumerate().Max(Math.Abs) <= 1e-5);
    }

    [TestMethod]
    public void FastPissa_ConvergesToTheTopSubspaceWithIterations_AndStaysExactOverall()
    {
        var w = DecayingSpectrum(48, 32, 4);
        var weight = Tensor.From(w.ToRowMajorArray().Select(v => (float)v).ToArray(), 48, 32);
        var wFloat = ToMatrix(weight);
        var best = Truncation(wFloat, 4);
        double Error(int iterations)
        {
            var layer = new LoraLinear(new Linear(weight));
            layer.UpdateLayer("default", 4, 4, 0, false, LoraInit.PissaFast(iterations), new Generator(5));
            var a = ToMatrix(layer.LoraA("default"));
            var b = ToMatrix(layer.LoraB("default"));
            var residual = ToMatrix(((Linear)layer.Base).Weight);
            Assert.IsTrue((residual + b * a - wFloat).Enumerate().Max(Math.Abs) <= 1e-5, "W_res + scaling·B·A == W whatever the SVD's accuracy");
            return (b * a - best).Enumerate().Max(Math.Abs);
        }
        // Spectrum 10·0.6^i: each subspace iteration shrinks the error by about (σ5/σ4)² = 0.36 (no oversampling, as
        // torch.svd_lowrank with q = r). σ1 = 10, so 0.1 is 1 % of the matrix scale.
        double coarse = Error(2), fine = Error(4), converged = Error(16);
        Assert.IsTrue(coarse <= 0.3 && fine <= 0.1, $"niter 2: {coarse}, niter 4: {fine}");
        Assert.IsTrue(converged <= 1e-4, $"niter 16: {converged}");
        Assert.IsTrue(fine < coarse && converged < fine, "more iterations, closer to the exact SVD");
    }

    [TestMethod]
    public void Pissa_RejectsARankAboveTheMatrixRank()
    {
        var layer = new LoraLinear(new Linear(4, 3, new Generator(6)));
        var e = Assert.ThrowsExactly<ArgumentException>(() => layer.UpdateLayer("default", 4, 8, 0, false, LoraInit.Pissa, new Generator(7)));
        StringAssert.Contains(e.Message, "rank 4 exceeds min(out, in) = 3");
    }
}
