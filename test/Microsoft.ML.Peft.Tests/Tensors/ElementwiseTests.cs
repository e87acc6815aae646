using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class ElementwiseTests
{
    [TestMethod]
    public void Add_BroadcastsRowAndColumn_HandComputed()
    {
        var a = Tensor.From([1, 2, 3], 3, 1);          // column
        var b = Tensor.From([10, 20], 1, 2);           // row
        var c = a + b;
        CollectionAssert.AreEqual(new[] { 3, 2 }, c.ShapeArray());
        CollectionAssert.AreEqual(new float[] { 11, 21, 12, 22, 13, 23 }, c.ToArray());
    }

    [TestMethod]
    public void BinaryOps_BiasRowAndScalar_HandComputed()
    {
        var x = Tensor.From([1, 2, 3, 4, 5, 6], 2, 3);
        var bias = Tensor.From([1, 10, 100], 3);
        CollectionAssert.AreEqual(new float[] { 2, 12, 103, 5, 15, 106 }, (x + bias).ToArray());
        CollectionAssert.AreEqual(new float[] { 0, -8, -97, 3, -5, -94 }, (x - bias).ToArray());
        CollectionAssert.AreEqual(new float[] { 1, 20, 300, 4, 50, 600 }, (x * bias).ToArray());
        CollectionAssert.AreEqual(new float[] { 1, 0.2f, 0.03f, 4, 0.5f, 0.06f }, (x / bias).ToArray());
        CollectionAssert.AreEqual(new float[] { 3, 4, 5, 6, 7, 8 }, (x + 2f).ToArray());
        CollectionAssert.AreEqual(new float[] { -1, -2, -3, -4, -5, -6 }, (-x).ToArray());
        CollectionAssert.AreEqual(new float[] { 9, 8, 7, 6, 5, 4 }, (10f - x).ToArray());
        CollectionAssert.AreEqual(new float[] { 0.5f, 1, 1.5f, 2, 2.5f, 3 }, (x / 2f).ToArray());
    }

    [TestMethod]
    public void Binary_OnTransposedAndExpandedViews_HandComputed()
    {
        var x = Tensor.From([1, 2, 3, 4, 5, 6], 2, 3);
        var xt = x.Transpose(0, 1);                    // [[1,4],[2,5],[3,6]]
        var e = Tensor.From([100, 200], 2).Expand(3, 2);
        CollectionAssert.AreEqual(new float[] { 101, 204, 102, 205, 103, 206 }, (xt + e).ToArray());
    }

    [TestMethod]
    public void Broadcast_IncompatibleShapes_NameOpAndShapes()
    {
        var a = Tensor.Zeros(2, 3);
        var b = Tensor.Zeros(4);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => a.Mul(b));
        StringAssert.Contains(ex.Message, "mul");
        StringAssert.Contains(ex.Message, "[2, 3]");
        StringAssert.Contains(ex.Message, "[4]");
    }

    [TestMethod]
    public void Binary_Gradients_WithBroadcasting_MatchFiniteDifferences()
    {
        var a = GradCheck.Param(1, 2, 3, 4);
        var b = GradCheck.Param(2, 3, 1);
        var c = GradCheck.Param(3, 4);
        GradCheck.Check(x => x[0].Add(x[1]), [a, b]);
        GradCheck.Check(x => x[0].Sub(x[1]), [a, c]);
        GradCheck.Check(x => x[0].Mul(x[1]), [a, b]);
        var positive = Tensor.Rand(new Generator(4), 3, 1).Add(1f).Detach().RequiresGrad_();
        GradCheck.Check(x => x[0].Div(x[1]), [a, positive]);
        GradCheck.Check(x => x[0].Mul(3f).Add(1f).Div(2f).Sub(4f), [a]);
    }

    [TestMethod]
    public void Unary_Values_MatchMathF()
    {
        float[] v = [-2.5f, -0.3f, 0.1f, 0.7f, 3f];
        var x = Tensor.From(v, 5);
        var pos = x.Abs().Add(0.5f);
        var p = pos.ToArray();
        GradCheck.AssertClose(v.Select(t => MathF.Exp(t)).ToArray(), x.Exp().ToArray(), 1e-6 * 20, "exp");
        GradCheck.AssertClose(p.Select(t => MathF.Log(t)).ToArray(), pos.Log().ToArray(), 1e-6, "log");
        GradCheck.AssertClose(p.Select(t => MathF.Sqrt(t)).ToArray(), pos.Sqrt().ToArray(), 1e-6, "sqrt");
        GradCheck.AssertClose(p.Select(t => 1f / MathF.Sqrt(t)).ToArray(), pos.Rsqrt().ToArray(), 1e-6, "rsqrt");
        GradCheck.AssertClose(v.Select(t => MathF.Tanh(t)).ToArray(), x.Tanh().ToArray(), 1e-6, "tanh");
        GradCheck.AssertClose(v.Select(t => 1f / (1f + MathF.Exp(-t))).ToArray(), x.Sigmoid().ToArray(), 1e-6, "sigmoid");
        GradCheck.AssertClose(v.Select(t => MathF.Max(t, 0)).ToArray(), x.Relu().ToArray(), 0, "relu");
        GradCheck.AssertClose(v.Select(t => t / (1f + MathF.Exp(-t))).ToArray(), x.Silu().ToArray(), 1e-6, "silu");
        GradCheck.AssertClose(p.Select(t => MathF.Pow(t, 1.7f)).ToArray(), pos.Pow(1.7f).ToArray(), 1e-5, "pow");
        GradCheck.AssertClose(v.Select(t => t * t).ToArray(), x.Pow(2f).ToArray(), 0, "square");
    }

    [TestMethod]
    public void Unary_Gradients_MatchFiniteDifferences()
    {
        var x = GradCheck.Param(11, 3, 5);
        var pos = Tensor.Rand(new Generator(12), 3, 5).Add(0.5f).Detach().RequiresGrad_();
        GradCheck.Check(t => t[0].Exp(), [x]);
        GradCheck.Check(t => t[0].Neg(), [x]);
        GradCheck.Check(t => t[0].Tanh(), [x]);
        GradCheck.Check(t => t[0].Sigmoid(), [x]);
        GradCheck.Check(t => t[0].Silu(), [x]);
        GradCheck.Check(t => t[0].Gelu(), [x]);
        GradCheck.Check(t => t[0].Gelu(GeluApproximation.Tanh), [x]);
        GradCheck.Check(t => t[0].Relu(), [x]);
        GradCheck.Check(t => t[0].Abs(), [x]);
        GradCheck.Check(t => t[0].ClampMin(0.2f), [x]);
        GradCheck.Check(t => t[0].Log(), [pos]);
        GradCheck.Check(t => t[0].Sqrt(), [pos]);
        GradCheck.Check(t => t[0].Rsqrt(), [pos]);
        GradCheck.Check(t => t[0].Pow(2.5f), [pos]);
        GradCheck.Check(t => t[0].Pow(-1f), [pos]);
    }

    [TestMethod]
    public void Unary_OnNonContiguousInput_UsesLogicalOrder()
    {
        var x = Tensor.From([1, 2, 3, 4, 5, 6], 2, 3).Transpose(0, 1);
        CollectionAssert.AreEqual(new float[] { -1, -4, -2, -5, -3, -6 }, x.Neg().ToArray());
    }

    [TestMethod]
    public void Op_OnBFloat16Tensor_ThrowsNamingOpAndDtype()
    {
        var w = Tensor.From([1, 2], 2).To(DType.BFloat16);
        var ex = Assert.ThrowsExactly<NotSupportedException>(() => w.Exp());
        StringAssert.Contains(ex.Message, "exp");
        StringAssert.Contains(ex.Message, "bfloat16");
    }
}
