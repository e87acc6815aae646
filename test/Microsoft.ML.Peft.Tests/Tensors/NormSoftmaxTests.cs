using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class NormSoftmaxTests
{
    [TestMethod]
    public void LayerNormAndRmsNorm_MatchPyTorchFloat64()
    {
        var n = EngineReference.Root.GetProperty("norms");
        var x = Tensor.From(n.GetProperty("x").Floats(), 3, 8);
        var w = Tensor.From(n.GetProperty("w").Floats(), 8);
        var b = Tensor.From(n.GetProperty("b").Floats(), 8);
        var r = Tensor.From(n.GetProperty("r").Floats(), 3, 8);

        var (xl, wl, bl) = (x.Clone().RequiresGrad_(), w.Clone().RequiresGrad_(), b.Clone().RequiresGrad_());
        var y = xl.LayerNorm(wl, bl, 1e-5f);
        y.Backward(r);
        var ln = n.GetProperty("layer_norm");
        GradCheck.AssertClose(ln.GetProperty("y").Floats(), y.ToArray(), 2e-6, "ln y");
        GradCheck.AssertClose(ln.GetProperty("gx").Floats(), xl.Grad!.ToArray(), 1e-5, "ln dx");
        GradCheck.AssertClose(ln.GetProperty("gw").Floats(), wl.Grad!.ToArray(), 1e-5, "ln dw");
        GradCheck.AssertClose(ln.GetProperty("gb").Floats(), bl.Grad!.ToArray(), 1e-5, "ln db");

        var (xr, wr) = (x.Clone().RequiresGrad_(), w.Clone().RequiresGrad_());
        var y2 = xr.RmsNorm(wr, 1e-6f);
        y2.Backward(r);
        var rms = n.GetProperty("rms_norm");
        GradCheck.AssertClose(rms.GetProperty("y").Floats(), y2.ToArray(), 2e-6, "rms y");
        GradCheck.AssertClose(rms.GetProperty("gx").Floats(), xr.Grad!.ToArray(), 1e-5, "rms dx");
        GradCheck.AssertClose(rms.GetProperty("gw").Floats(), wr.Grad!.ToArray(), 1e-5, "rms dw");
    }

    [TestMethod]
    public void Norms_Gradients_MatchFiniteDifferences()
    {
        GradCheck.Check(t => t[0].LayerNorm(t[1], t[2]), [GradCheck.Param(41, 2, 3, 6), GradCheck.Param(42, 6), GradCheck.Param(43, 6)]);
        GradCheck.Check(t => t[0].LayerNorm(null, null), [GradCheck.Param(44, 4, 5)]);
        GradCheck.Check(t => t[0].RmsNorm(t[1]), [GradCheck.Param(45, 3, 7), GradCheck.Param(46, 7)]);
        GradCheck.Check(t => t[0].Transpose(0, 1).RmsNorm(null), [GradCheck.Param(47, 5, 3)]);
    }

    [TestMethod]
    public void Softmax_HandComputedAndStableForLargeLogits()
    {
        var x = Tensor.From([1, 2, 3, 1000, 1000, 1000], 2, 3);
        var y = x.Softmax().ToArray();
        double z = Math.Exp(1) + Math.Exp(2) + Math.Exp(3);
        Assert.AreEqual(Math.Exp(1) / z, y[0], 1e-7);
        Assert.AreEqual(Math.Exp(3) / z, y[2], 1e-7);
        Assert.AreEqual(1f / 3, y[4], 1e-7);
        var ls = x.LogSoftmax().ToArray();
        Assert.AreEqual(3 - Math.Log(z), ls[2], 1e-6);
        Assert.AreEqual(-Math.Log(3), ls[5], 1e-6);
    }

    [TestMethod]
    public void SoftmaxBackward_MatchesDoublePrecisionJacobian()
    {
        // softmax: dx_i = y_i (g_i − Σ_j g_j y_j); log_softmax: dx_i = g_i − p_i Σ_j g_j, with p, y from double math.
        var gen = new Generator(54);
        var x = Tensor.Randn(gen, 3, 9).Mul(3f).Detach().RequiresGrad_();
        var g = Tensor.Randn(gen, 3, 9);
        x.Softmax().Backward(g);
        var ds = x.Grad!.ToArray();
        x.ZeroGrad();
        x.LogSoftmax().Backward(g);
        var dl = x.Grad!.ToArray();
        float[] xv = x.ToArray(), gv = g.ToArray();
        for (int r = 0; r < 3; r++)
        {
            var row = xv.Skip(r * 9).Take(9).Select(v => (double)v).ToArray();
            double max = row.Max(), z = row.Sum(v => Math.Exp(v - max));
            var p = row.Select(v => Math.Exp(v - max) / z).ToArray();
            double dot = 0, sumG = 0;
            for (int j = 0; j < 9; j++)
            {
                dot += gv[r * 9 + j] * p[j];
                sumG += gv[r * 9 + j];
            }
            for (int j = 0; j < 9; j++)
            {
                Assert.AreEqual(p[j] * (gv[r * 9 + j] - dot), ds[r * 9 + j], 1e-6, $"softmax dx[{r},{j}]");
                Assert.AreEqual(gv[r * 9 + j] - p[j] * sumG, dl[r * 9 + j], 1e-6, $"log_softmax dx[{r},{j}]");
            }
        }
    }

    [TestMethod]
    public void Softmax_Gradients_MatchFiniteDifferences()
    {
        GradCheck.Check(t => t[0].Softmax(), [GradCheck.Param(51, 3, 6)]);
        GradCheck.Check(t => t[0].LogSoftmax(), [GradCheck.Param(52, 2, 2, 5)]);
        GradCheck.Check(t => t[0].Transpose(0, 1).Softmax(), [GradCheck.Param(53, 4, 3)]);
    }

    [TestMethod]
    public void Gelu_MatchesPyTorch_BothForms()
    {
        var gl = EngineReference.Root.GetProperty("gelu");
        var xs = gl.GetProperty("x").Floats();
        foreach (var (form, key) in new[] { (GeluApproximation.None, "none"), (GeluApproximation.Tanh, "tanh") })
        {
            var x = Tensor.From(xs, xs.Length).RequiresGrad_();
            var y = x.Gelu(form);
            y.Sum().Backward();
            var f64 = gl.GetProperty(key + "_f64");
            var yv = y.ToArray();
            var gv = x.Grad!.ToArray();
            var ey = f64.GetProperty("y").Floats();
            var eg = f64.GetProperty("grad").Floats();
            for (int i = 0; i < xs.Length; i++)
            {
                // Within a few float ulps of the float64 truth (the erf form is correctly rounded in practice).
                double tol = (form == GeluApproximation.None ? 1.5 : 4) * MathF.BitIncrement(MathF.Max(MathF.Abs(ey[i]), 1e-30f)) - Math.Abs(ey[i]) + 1e-37;
                Assert.AreEqual(ey[i], yv[i], Math.Max(tol, 2e-7 * Math.Abs(ey[i])), $"{key} y({xs[i]})");
                Assert.AreEqual(eg[i], gv[i], 1e-6, $"{key} grad({xs[i]})");
            }
        }
    }

    [TestMethod]
    public void NormalCdf_MatchesMathNetErfOverWideRange()
    {
        for (double x = -12; x <= 12; x += 0.001)
        {
            double expected = 0.5 * MathNet.Numerics.SpecialFunctions.Erfc(-x / Math.Sqrt(2));
            double actual = NormalDistribution.Cdf(x);
            Assert.AreEqual(expected, actual, 1e-11 * expected + 1e-300, $"Phi({x})");
        }
        // The AVX-512 path (all-inner, all-tail and mixed vectors, the asymptotic range, and its own exp) agrees with the scalar path.
        double[][] vectors =
        [
            [-0.9, -0.5, 0, 0.1, 0.3, 0.7, 0.99, -0.01],
            [-9.0, -2.5, 1.5, 4.7, -8.6, 12, -1.42, 3.3],
            [-9.0, -0.5, 0.3, 4.7, -20, 0.2, -1.5, 50],
        ];
        foreach (var lanes in vectors)
        {
            var v = NormalDistribution.Cdf(System.Runtime.Intrinsics.Vector512.Create(lanes), out var density);
            for (int i = 0; i < 8; i++)
            {
                Assert.AreEqual(NormalDistribution.Cdf(lanes[i]), v[i], 1e-13 * v[i] + 1e-300, $"Phi({lanes[i]}) vector");
                double phi = Math.Exp(-0.5 * lanes[i] * lanes[i]) / Math.Sqrt(2 * Math.PI);
                Assert.AreEqual(phi, density[i], 1e-13 * phi + 1e-300, $"phi({lanes[i]}) vector");
            }
        }
    }
}
