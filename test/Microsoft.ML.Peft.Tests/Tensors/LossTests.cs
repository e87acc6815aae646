using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class LossTests
{
    [TestMethod]
    public void CrossEntropy_AllVariants_MatchPyTorch()
    {
        var ce = EngineReference.Root.GetProperty("cross_entropy");
        var shape = ce.GetProperty("shape").Ints();
        var logits = ce.GetProperty("logits").Floats();
        var targets = Tensor.FromInt32(ce.GetProperty("targets").Ints(), shape[0]);
        var weights = Tensor.From(ce.GetProperty("weights").Floats(), shape[1]);
        int checkedCases = 0;
        foreach (var c in ce.GetProperty("cases").EnumerateArray())
        {
            float smoothing = (float)c.GetProperty("label_smoothing").GetDouble();
            bool weighted = c.GetProperty("weighted").GetBoolean();
            var reduction = c.GetProperty("reduction").GetString() switch { "mean" => Reduction.Mean, "sum" => Reduction.Sum, _ => Reduction.None };
            var x = Tensor.From(logits, shape).RequiresGrad_();
            var loss = x.CrossEntropy(targets, -100, smoothing, weighted ? weights : null, reduction);
            string what = $"ε={smoothing} weighted={weighted} {reduction}";
            GradCheck.AssertClose(c.GetProperty("loss").Floats(), loss.ToArray(), 2e-6, what + " loss");
            var upstream = c.GetProperty("upstream").Floats();
            loss.Backward(Tensor.From(upstream, loss.ShapeArray()));
            GradCheck.AssertClose(c.GetProperty("grad").Floats(), x.Grad!.ToArray(), 1e-6, what + " grad");
            checkedCases++;
        }
        Assert.AreEqual(12, checkedCases);
    }

    [TestMethod]
    public void CrossEntropy_HandComputedTwoClasses()
    {
        // logits (0, ln 3): p = (1/4, 3/4); target 1 → loss = −ln(3/4).
        var x = Tensor.From([0f, MathF.Log(3f)], 1, 2).RequiresGrad_();
        var loss = x.CrossEntropy(Tensor.FromInt32([1], 1));
        Assert.AreEqual(-Math.Log(0.75), loss.Item(), 1e-7);
        loss.Backward();
        CollectionAssert.AreEqual(new[] { 0.25f, -0.25f }, x.Grad!.ToArray());
    }

    [TestMethod]
    public void CrossEntropy_Gradients_MatchFiniteDifferences_WithSequenceShape()
    {
        var targets = Tensor.FromInt32([0, 3, -100, 2, 1, 3], 2, 3);
        var w = Tensor.From([1f, 0.5f, 2f, 1.5f], 4);
        GradCheck.Check(t => t[0].CrossEntropy(targets, labelSmoothing: 0.2f, classWeights: w), [GradCheck.Param(61, 2, 3, 4)]);
        GradCheck.Check(t => t[0].CrossEntropy(targets, reduction: Reduction.None), [GradCheck.Param(62, 2, 3, 4)]);
    }

    [TestMethod]
    public void CrossEntropy_BadInput_NamesTheProblem()
    {
        var x = Tensor.Zeros(2, 3);
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => x.CrossEntropy(Tensor.FromInt32([0, 3], 2)));
        StringAssert.Contains(ex.Message, "target 3 at row 1");
        var shapeEx = Assert.ThrowsExactly<ArgumentException>(() => x.CrossEntropy(Tensor.FromInt32([0, 1, 2], 3)));
        StringAssert.Contains(shapeEx.Message, "[2]");
        Assert.IsTrue(float.IsNaN(x.CrossEntropy(Tensor.FromInt32([-100, -100], 2)).Item()), "all-ignored mean is NaN as in PyTorch");
    }

    [TestMethod]
    public void MseLoss_HandComputedAndGradient()
    {
        var a = Tensor.From([1, 2, 3, 4], 2, 2).RequiresGrad_();
        var b = Tensor.From([0, 2, 5, 1], 2, 2);
        var loss = a.MseLoss(b);
        Assert.AreEqual((1 + 0 + 4 + 9) / 4f, loss.Item());
        loss.Backward();
        CollectionAssert.AreEqual(new[] { 0.5f, 0f, -1f, 1.5f }, a.Grad!.ToArray());
        Assert.AreEqual(14f, a.MseLoss(b, Reduction.Sum).Item());
    }
}
