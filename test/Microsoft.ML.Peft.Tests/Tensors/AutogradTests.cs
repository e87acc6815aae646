using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class AutogradTests
{
    [TestMethod]
    public void Backward_ChainRuleAndFanIn_HandComputed()
    {
        // y = x·x + 3x at x = 2 → dy/dx = 2x + 3 = 7 (x reaches y along three paths).
        var x = Tensor.From([2f], 1).RequiresGrad_();
        var y = x.Mul(x).Add(x.Mul(3f)).Sum();
        y.Backward();
        Assert.AreEqual(7f, x.Grad!.Item());
    }

    [TestMethod]
    public void Gradients_AccumulateAcrossBackwardCalls_UntilZeroGrad()
    {
        var x = Tensor.From([1f, 2f], 2).RequiresGrad_();
        x.Mul(2f).Sum().Backward();
        x.Mul(3f).Sum().Backward();
        CollectionAssert.AreEqual(new float[] { 5, 5 }, x.Grad!.ToArray());
        var buffer = x.Grad;
        x.ZeroGrad();
        Assert.IsNull(x.Grad);
        x.Mul(4f).Sum().Backward();
        CollectionAssert.AreEqual(new float[] { 4, 4 }, x.Grad!.ToArray());
        Assert.AreSame(buffer, x.Grad, "the gradient buffer is reused after ZeroGrad");
        x.ZeroGrad(setToNone: false);
        CollectionAssert.AreEqual(new float[] { 0, 0 }, x.Grad!.ToArray());
    }

    [TestMethod]
    public void NoGrad_RecordsNothing_AndDetachCutsTheGraph()
    {
        var x = Tensor.From([1f, 2f], 2).RequiresGrad_();
        using (Autograd.NoGrad())
        {
            var y = x.Mul(2f);
            Assert.IsFalse(y.RequiresGrad);
            Assert.IsNull(y.GradFn);
        }
        var z = x.Mul(2f);
        Assert.IsTrue(z.RequiresGrad);
        Assert.AreEqual("mul_scalar", z.GradFn!.Op);
        var d = z.Detach();
        Assert.IsFalse(d.RequiresGrad);
        Assert.AreSame(z.Storage, d.Storage);
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => d.Mul(2f).Sum().Backward());
        StringAssert.Contains(ex.Message, "does not require grad");
    }

    [TestMethod]
    public void FrozenInputs_AreNotAskedForGradients()
    {
        var trainable = Tensor.From([1f, 2f], 2).RequiresGrad_();
        var frozen = Tensor.From([3f, 4f], 2);
        var asked = new List<(int Index, bool Needed)>();
        var y = Tensor.Zeros(2);
        using (Autograd.NoGrad()) y = trainable.Add(frozen);
        Autograd.Record("spy", y, [trainable, frozen], (node, g) =>
        {
            for (int i = 0; i < 2; i++)
            {
                asked.Add((i, node.NeedsGrad(i)));
                if (node.NeedsGrad(i)) node.AccumulateGrad(i, g);
            }
        });
        y.Sum().Backward();
        CollectionAssert.AreEqual(new[] { (0, true), (1, false) }, asked);
        Assert.IsNull(frozen.Grad, "a frozen tensor never allocates a gradient");
        CollectionAssert.AreEqual(new float[] { 1, 1 }, trainable.Grad!.ToArray());
    }

    [TestMethod]
    public void GradCheck_DetectsAWrongBackward()
    {
        var x = GradCheck.Param(1, 3);
        Tensor WrongSquare(Tensor[] t)
        {
            Tensor y;
            using (Autograd.NoGrad()) y = t[0].Mul(t[0]);
            if (Autograd.ShouldRecord(t[0])) Autograd.Record("wrong_square", y, [t[0]], (node, g) => node.AccumulateGrad(0, g.Mul(node.Inputs[0])));  // should be 2x
            return y;
        }
        Assert.ThrowsExactly<AssertFailedException>(() => GradCheck.Check(WrongSquare, [x]));
    }

    [TestMethod]
    public void InPlaceChangeOfSavedTensor_IsReportedNamingTheOp()
    {
        var x = Tensor.From([1f, 2f], 2).RequiresGrad_();
        var e = x.Exp();                       // exp saves its output
        var loss = e.Sum();
        using (Autograd.NoGrad()) e.Mul_(2f);
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => loss.Backward());
        StringAssert.Contains(ex.Message, "'exp'");
        StringAssert.Contains(ex.Message, "modified in place");
    }

    [TestMethod]
    public void InPlaceOnTensorRequiringGrad_IsRefusedOutsideNoGrad()
    {
        var w = Tensor.Zeros(2).RequiresGrad_();
        var ex = Assert.ThrowsExactly<InvalidOperationException>(() => w.Fill_(1f));
        StringAssert.Contains(ex.Message, "fill_");
        using (Autograd.NoGrad()) w.Fill_(1f).Add_(Tensor.From([1f, 2f], 2), alpha: 0.5f).Mul_(2f);
        CollectionAssert.AreEqual(new float[] { 3, 4 }, w.ToArray());
    }

    [TestMethod]
    public void DetectAnomaly_NamesTheFirstOpProducingNaN_ForwardAndBackward()
    {
        var x = Tensor.From([-1f, 4f], 2).RequiresGrad_();
        using (Autograd.DetectAnomaly())
        {
            var ex = Assert.ThrowsExactly<ArithmeticException>(() => x.Sqrt().Mul(2f));
            StringAssert.Contains(ex.Message, "'sqrt'");
            StringAssert.Contains(ex.Message, "[2]");
            // Forward is finite (sqrt(0) = 0) but its backward divides by zero: 0.5/sqrt(0) = Inf.
            var z = Tensor.From([0f, 4f], 2).RequiresGrad_();
            var loss = z.Sqrt().Sum();
            var bex = Assert.ThrowsExactly<ArithmeticException>(() => loss.Backward());
            StringAssert.Contains(bex.Message, "'sqrt'");
        }
        Assert.IsFalse(Autograd.IsAnomalyDetectionEnabled);
        _ = x.Sqrt();   // outside the scope NaN passes silently, as in PyTorch
    }

    [TestMethod]
    public void BackwardSeed_MustMatchShape_AndScalarRootRequired()
    {
        var x = Tensor.Zeros(2, 3).RequiresGrad_();
        var y = x.Mul(2f);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => y.Backward()).Message, "one-element");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => y.Backward(Tensor.Zeros(3, 2))).Message, "[3, 2]");
        y.Backward(Tensor.Ones(2, 3));
        CollectionAssert.AreEqual(Enumerable.Repeat(2f, 6).ToArray(), x.Grad!.ToArray());
    }

    [TestMethod]
    public void DeepGraph_DoesNotOverflowTheStack()
    {
        var x = Tensor.From([1f], 1).RequiresGrad_();
        var y = x;
        for (int i = 0; i < 20000; i++) y = y.Add(0f);
        y.Sum().Backward();
        Assert.AreEqual(1f, x.Grad!.Item());
    }
}
