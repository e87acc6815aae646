using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary><see cref="QuantizedLinear"/>: forward against the dequantized float32 layer, gradients against finite differences.</summary>
[TestClass]
public sealed class QuantizedLinearTests
{
    [TestMethod]
    [DataRow(FourBitType.NF4, true)]
    [DataRow(FourBitType.FP4, false)]
    [DataRow(FourBitType.Int4, true)]
    public void Forward_MatchesDequantizedLinear(FourBitType type, bool doubleQuant)
    {
        var linear = new Linear(70, 45, new Generator(1));
        var q = QuantizedLinear.FromLinear(linear, new QuantizationOptions { Type = type, DoubleQuant = doubleQuant });
        var dense = q.Dequantize();
        CollectionAssert.AreEqual(q.Weight.Dequantize(), dense.Weight.ToArray());
        CollectionAssert.AreEqual(linear.Bias!.ToArray(), dense.Bias!.ToArray());
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var x = Tensor.Randn(new Generator(2), 2, 9, 70);
        var expected = dense.Forward(x).ToArray();
        var actual = q.Forward(x);
        CollectionAssert.AreEqual(new[] { 2, 9, 45 }, actual.ShapeArray());
        // Both run the packed GEMM on the same fp32 values with the bias preloaded (18 rows > the skinny-GEMM limit).
        CollectionAssert.AreEqual(expected, actual.ToArray());
    }

    [TestMethod]
    public void Forward_QuantizationErrorIsSmall()
    {
        var linear = new Linear(64, 32, new Generator(4));
        var q = QuantizedLinear.FromLinear(linear);
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var x = Tensor.Randn(new Generator(5), 16, 64);
        var exact = linear.Forward(x).ToArray();
        var approx = q.Forward(x).ToArray();
        double err = 0, norm = 0;
        for (int i = 0; i < exact.Length; i++)
        {
            err += Math.Pow(exact[i] - approx[i], 2);
            norm += Math.Pow(exact[i], 2);
        }
        // NF4 relative weight MSE ≈ 0.0086/σ² for Gaussian data (Quantization README); uniform weights do better.
        Assert.IsTrue(Math.Sqrt(err / norm) < 0.12, $"relative output error {Math.Sqrt(err / norm)}");
    }

    [TestMethod]
    public void Gradient_WrtInputAndBias_MatchesFiniteDifferences()
    {
        var q = QuantizedLinear.FromLinear(new Linear(13, 7, new Generator(6)), new QuantizationOptions { BlockSize = 32 });
        q.Bias!.RequiresGrad = true;
        var x = GradCheck.Param(7, 3, 2, 13);
        GradCheck.Check(t => q.Forward(t[0]), [x]);
        GradCheck.Check(_ => q.Forward(x), [q.Bias]);
    }

    [TestMethod]
    public void Weight_IsFrozen_AndBiasFrozenByDefault()
    {
        var q = QuantizedLinear.FromLinear(new Linear(8, 4, new Generator(8)));
        Assert.IsFalse(q.Parameters(trainableOnly: true).Any());
        CollectionAssert.AreEqual(new[] { "bias" }, q.NamedParameters().Select(p => p.Name).ToArray());
        var x = GradCheck.Param(9, 3, 8);
        using var scope = TensorScope.Begin();
        var y = q.Forward(x);
        y.Sum().Backward();
        Assert.IsNotNull(x.Grad);
        Assert.IsNull(q.Bias!.Grad);
    }

    [TestMethod]
    public void BFloat16Bias_IsWidenedInForward()
    {
        var linear = new Linear(16, 5, new Generator(10));
        var q = QuantizedLinear.FromLinear(linear, new QuantizationOptions { BiasInBFloat16 = true });
        Assert.AreEqual(DType.BFloat16, q.Bias!.DType);
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var zeros = Tensor.Zeros(2, 16);
        var y = q.Forward(zeros).ToArray();
        var b = q.Bias.To(DType.Float32).ToArray();
        for (int i = 0; i < 10; i++) Assert.AreEqual(b[i % 5], y[i]);
        Assert.AreEqual(linear.Bias!.At(0), b[0], 4e-3 * Math.Abs(b[0]));
    }

    [TestMethod]
    public void Forward_RejectsWrongWidth()
    {
        var q = QuantizedLinear.FromLinear(new Linear(8, 4, new Generator(11)));
        using var scope = TensorScope.Begin();
        var e = Assert.ThrowsExactly<ArgumentException>(() => q.Forward(Tensor.Zeros(2, 7)));
        StringAssert.Contains(e.Message, "in_features = 8");
    }
}
