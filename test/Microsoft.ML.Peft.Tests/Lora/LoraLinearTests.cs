using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Tensors;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Lora;

[TestClass]
public sealed class LoraLinearTests
{
    /// <summary>The fixture's layer (base 6 → 5 with bias, r 4, alpha 8) with the fixture's A and B loaded.</summary>
    private static (LoraLinear Layer, Dictionary<string, Tensor> Fixture) FixtureLayer(bool rsLora)
    {
        var f = Load("lora_linear.safetensors");
        var layer = new LoraLinear(new Linear(f["base.weight"], f["base.bias"]));
        layer.Base.SetRequiresGrad(false);
        layer.UpdateLayer("default", 4, 8, 0, rsLora, LoraInit.Default, new Generator(1));
        layer.SetActiveAdapters(["default"], trainable: true);
        using (Autograd.NoGrad())
        {
            layer.LoraA("default").CopyFrom_(f["lora_A"]);
            layer.LoraB("default").CopyFrom_(f["lora_B"]);
        }
        return (layer, f);
    }

    [TestMethod]
    [DataRow(false, "plain")]
    [DataRow(true, "rslora")]
    public void ForwardAndBackward_MatchPyTorch(bool rsLora, string prefix)
    {
        var (layer, f) = FixtureLayer(rsLora);
        Assert.AreEqual(rsLora ? 8 / 2f : 8 / 4f, layer.Scaling("default"), "scaling = alpha/sqrt(r) with rsLoRA, alpha/r otherwise");
        var x = f["input"].Clone().RequiresGrad_();
        var y = layer.Forward(x);
        AssertClose(f[prefix + ".output"], y, 2e-6, 1e-6, "output");
        y.Mul(f["loss.projection"]).Sum().Backward();
        AssertClose(f[prefix + ".grad.lora_A"], layer.LoraA("default").Grad!, 1e-5, 1e-6, "dL/dA");
        AssertClose(f[prefix + ".grad.lora_B"], layer.LoraB("default").Grad!, 1e-5, 1e-6, "dL/dB");
        AssertClose(f[prefix + ".grad.input"], x.Grad!, 1e-5, 1e-6, "dL/dx");
        Assert.IsNull(((Linear)layer.Base).Weight.Grad, "the frozen base weight gets no gradient");
        Assert.IsNull(((Linear)layer.Base).Bias!.Grad, "the frozen base bias gets no gradient");
    }

    [TestMethod]
    public void Gradients_AgreeWithFiniteDifferences()
    {
        var g = new Generator(3);
        var layer = new LoraLinear(new Linear(7, 5, g));
        layer.Base.SetRequiresGrad(false);
        layer.UpdateLayer("default", 3, 6, 0, false, LoraInit.Random, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        var x = GradCheck.Param(11, 4, 7);
        GradCheck.Check(_ => layer.Forward(x), [layer.LoraA("default"), layer.LoraB("default"), x]);
    }

    [TestMethod]
    public void Merge_AddsScalingTimesBA_AndUnmergeRestoresTheBaseWeight()
    {
        var (layer, f) = FixtureLayer(rsLora: false);
        var baseLinear = (Linear)layer.Base;
        var original = baseLinear.Weight.Clone();
        var x = f["input"];
        Tensor unmerged;
        using (Autograd.NoGrad()) unmerged = layer.Forward(x);

        layer.Merge();
        CollectionAssert.AreEqual(new[] { "default" }, layer.MergedAdapters.ToArray());
        AssertClose(f["plain.merged.weight"], baseLinear.Weight, 1e-6, 0, "W + scaling·B·A");
        Tensor merged;
        using (Autograd.NoGrad()) merged = layer.Forward(x);
        Assert.IsTrue(MaxAbsDiff(unmerged, merged) <= 1e-5, $"merged output differs by {MaxAbsDiff(unmerged, merged)}");

        var twice = Assert.ThrowsExactly<InvalidOperationException>(() => layer.Merge());
        StringAssert.Contains(twice.Message, "already merged");

        layer.Unmerge();
        Assert.AreEqual(0, layer.MergedAdapters.Count);
        Assert.IsTrue(MaxAbsDiff(original, baseLinear.Weight) <= 1e-6, $"unmerge left {MaxAbsDiff(original, baseLinear.Weight)}");
        Tensor after;
        using (Autograd.NoGrad()) after = layer.Forward(x);
        Assert.IsTrue(MaxAbsDiff(unmerged, after) <= 1e-5);
    }

    [TestMethod]
    public void SafeMerge_RefusesNonFiniteUpdates_AndLeavesTheWeightUnchanged()
    {
        var (layer, _) = FixtureLayer(rsLora: false);
        var before = ((Linear)layer.Base).Weight.ToArray();
        using (Autograd.NoGrad()) layer.LoraB("default").Narrow(0, 1, 1).Fill_(float.NaN);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => layer.Merge(safeMerge: true));
        StringAssert.Contains(e.Message, "NaN");
        CollectionAssert.AreEqual(before, ((Linear)layer.Base).Weight.ToArray());
        Assert.AreEqual(0, layer.MergedAdapters.Count);
    }

    [TestMethod]
    public void Merge_IntoBFloat16Weight_IsRefusedWithAClearError()
    {
        var g = new Generator(4);
        var w = Tensor.Randn(g, 5, 6).To(DType.BFloat16);
        var layer = new LoraLinear(new Linear(w));
        layer.UpdateLayer("default", 2, 4, 0, false, LoraInit.Random, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        var e = Assert.ThrowsExactly<NotSupportedException>(() => layer.Merge());
        StringAssert.Contains(e.Message, "bfloat16");
        // The forward still works on the frozen bf16 weight.
        using (Autograd.NoGrad()) Assert.AreEqual(5, layer.Forward(Tensor.Randn(g, 3, 6)).Size(1));
    }

    [TestMethod]
    public void DefaultInit_IsANoOp_BitForBit_WithKaimingUniformA()
    {
        var g = new Generator(5);
        var linear = new Linear(64, 32, g);
        var x = Tensor.Randn(g, 4, 64);
        Tensor expected;
        using (Autograd.NoGrad()) expected = linear.Forward(x);
        var layer = new LoraLinear(linear);
        layer.UpdateLayer("default", 8, 16, 0, false, LoraInit.Default, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        using (Autograd.NoGrad()) AssertBitIdentical(expected, layer.Forward(x), "output at init");
        Assert.IsTrue(layer.LoraB("default").ToArray().All(v => v == 0), "B starts at zero");
        var a = layer.LoraA("default").ToArray();
        float bound = 1f / MathF.Sqrt(64);
        Assert.IsTrue(a.All(v => v >= -bound && v < bound), "A ~ U(-1/sqrt(in), 1/sqrt(in))");
        Assert.IsTrue(a.Max() > 0.9 * bound && a.Min() < -0.9 * bound, "A spans the Kaiming-uniform range");
    }

    [TestMethod]
    public void GaussianInit_DrawsAWithStandardDeviationOneOverRank()
    {
        var g = new Generator(6);
        var layer = new LoraLinear(new Linear(4096, 8, g, hasBias: false));
        layer.UpdateLayer("default", 4, 8, 0, false, LoraInit.Gaussian, g);
        var a = layer.LoraA("default").ToArray();
        double mean = a.Average(v => (double)v);
        double std = Math.Sqrt(a.Average(v => (v - mean) * (v - mean)));
        Assert.AreEqual(0.25, std, 0.25 * 0.03, "PEFT: nn.init.normal_(A, std=1/r)");
        Assert.AreEqual(0, mean, 0.01);
        Assert.IsTrue(layer.LoraB("default").ToArray().All(v => v == 0));
    }

    [TestMethod]
    public void RandomInit_LeavesBNonZero_AsNnLinearDefault()
    {
        var g = new Generator(7);
        var layer = new LoraLinear(new Linear(16, 8, g));
        layer.UpdateLayer("default", 4, 8, 0, false, LoraInit.Random, g);
        var b = layer.LoraB("default").ToArray();
        Assert.IsTrue(b.Any(v => v != 0));
        Assert.IsTrue(b.All(v => Math.Abs(v) <= 0.5f), "B ~ U(-1/sqrt(r), 1/sqrt(r)) with r = 4");
    }

    [TestMethod]
    public void Dropout_AppliesOnlyInTraining_ToTheAdapterInput()
    {
        var g = new Generator(8);
        var layer = new LoraLinear(new Linear(16, 8, g));
        layer.UpdateLayer("default", 4, 8, 0.5, false, LoraInit.Random, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        var x = Tensor.Randn(g, 6, 16);
        Tensor expected, eval, train;
        using (Autograd.NoGrad())
        {
            var a = layer.LoraA("default");
            var b = layer.LoraB("default");
            expected = layer.Base.Forward(x).Add(x.Linear(a).Linear(b).Mul(2f));
            layer.Eval();
            eval = layer.Forward(x);
            layer.Train();
            train = layer.Forward(x);
        }
        Assert.IsTrue(MaxAbsDiff(expected, eval) <= 1e-5, "no dropout in eval mode");
        Assert.IsTrue(MaxAbsDiff(expected, train) > 1e-3, "dropout changes the training forward");
    }

    [TestMethod]
    public void SeveralAdapters_AddUpWhenActiveTogether_AndSwitchCleanly()
    {
        var g = new Generator(9);
        var layer = new LoraLinear(new Linear(10, 6, g));
        layer.Base.SetRequiresGrad(false);
        layer.UpdateLayer("a", 2, 4, 0, false, LoraInit.Random, g);
        layer.UpdateLayer("b", 3, 3, 0, true, LoraInit.Random, g);
        CollectionAssert.AreEqual(new[] { "a", "b" }, layer.AdapterNames.ToArray());
        var x = Tensor.Randn(g, 5, 10);
        Tensor baseOut, withA, withB, both;
        using (Autograd.NoGrad())
        {
            baseOut = layer.Base.Forward(x);
            layer.SetActiveAdapters(["a"], trainable: true);
            withA = layer.Forward(x);
            layer.SetActiveAdapters(["b"], trainable: true);
            withB = layer.Forward(x);
            layer.SetActiveAdapters(["a", "b"], trainable: true);
            both = layer.Forward(x);
        }
        var deltaA = withA.Sub(baseOut);
        var deltaB = withB.Sub(baseOut);
        Assert.IsTrue(MaxAbsDiff(baseOut.Add(deltaA).Add(deltaB), both) <= 1e-5, "active adapters add up");
        Assert.AreEqual(3 / MathF.Sqrt(3), layer.Scaling("b"), 1e-6);

        layer.SetActiveAdapters(["b"], trainable: true);
        Assert.IsFalse(layer.LoraA("a").RequiresGrad, "inactive adapters are frozen");
        Assert.IsTrue(layer.LoraA("b").RequiresGrad && layer.LoraB("b").RequiresGrad);

        layer.AdaptersEnabled = false;
        using (Autograd.NoGrad()) AssertBitIdentical(baseOut, layer.Forward(x), "disabled = base layer");
        Assert.IsFalse(layer.LoraA("b").RequiresGrad, "disabled adapters are frozen");
    }

    [TestMethod]
    public void BadArguments_AreRejectedWithClearMessages()
    {
        var g = new Generator(10);
        var layer = new LoraLinear(new Linear(4, 4, g));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => layer.UpdateLayer("x", 0, 8, 0, false, LoraInit.Default, g));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => layer.UpdateLayer("x", 2, 8, 1.0, false, LoraInit.Default, g));
        layer.UpdateLayer("x", 2, 8, 0, false, LoraInit.Default, g);
        Assert.ThrowsExactly<InvalidOperationException>(() => layer.UpdateLayer("x", 2, 8, 0, false, LoraInit.Default, g));
        var e = Assert.ThrowsExactly<KeyNotFoundException>(() => layer.SetActiveAdapters(["y"], trainable: true));
        StringAssert.Contains(e.Message, "'y'");
        Assert.ThrowsExactly<ArgumentException>(() => new LoraLinear(layer));
    }
}
