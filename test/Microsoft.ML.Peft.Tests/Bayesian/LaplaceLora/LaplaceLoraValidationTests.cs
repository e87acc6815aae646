using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Bayesian.LaplaceLora;

using LaplaceLora = Microsoft.ML.Peft.Bayesian.LaplaceLora;

[TestClass]
public sealed class LaplaceLoraValidationTests
{
    private static LaplaceBatch Batch(int count, ulong seed = 1) =>
        new(Tensor.Randn(new Generator(seed), count, 5), Enumerable.Range(0, count).Select(i => i % 3).ToArray());

    [TestMethod]
    public void NoActiveLoraLayer_IsAClearError()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 50);
        using (peft.DisableAdapters())
        {
            var e = Assert.ThrowsExactly<InvalidOperationException>(() => LaplaceLora.Fit(peft, model.Forward, [Batch(4)]));
            StringAssert.Contains(e.Message, "no enabled LoRA layers");
        }
    }

    /// <summary>The probed layer computes plain LoRA; a DoRA adapter would silently get other logits, so it is refused.</summary>
    [TestMethod]
    public void DoraAdapter_IsAClearError()
    {
        var model = new TinyMlp(new Generator(55), 5, 6, 3);
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "fc1", "fc2" }, Rank = 2, Alpha = 4, UseDora = true, InitLoraWeights = LoraInit.Random },
            generator: new Generator(56));
        model.Eval();
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => LaplaceLora.Fit(peft, model.Forward, [Batch(4)]));
        StringAssert.Contains(e.Message, "adapter 'default' of 'fc1' is DoRA");
        Assert.IsInstanceOfType<LoraLinear>(model.GetModule("fc1"), "the model is left as it was");
    }

    [TestMethod]
    public void NonPositivePriorPrecision_IsRejected()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 51);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LaplaceLora.Fit(peft, model.Forward, [Batch(4)], new LaplaceLoraOptions { PriorPrecision = 0 }));
        using var laplace = LaplaceLora.Fit(peft, model.Forward, [Batch(4)]);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => laplace.SetPriorPrecision(-1));
        StringAssert.Contains(e.Message, "prior precision");
        var f = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => laplace.SetPriorPrecisions([1, 1, 0, 1]));
        StringAssert.Contains(f.Message, "fc2.lora_A.default");
    }

    [TestMethod]
    public void NonFiniteCurvature_NamesTheLayer()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 52);
        var values = new float[2 * 5];
        values[3] = float.NaN;
        var bad = new LaplaceBatch(Tensor.From(values, 2, 5), [0, 1]);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => LaplaceLora.Fit(peft, model.Forward, [bad]));
        StringAssert.Contains(e.Message, "fc1.lora_A.default");
        Assert.IsInstanceOfType<LoraLinear>(model.GetModule("fc1"), "a failed fit restores the LoRA layers");
    }

    /// <summary>
    /// ±∞ and NaN anywhere in a batch's rows are caught: 7 rows × 5 inputs = 35 values put index 33 in the scalar tail
    /// after the vectorised check's whole vectors, index 4 and 20 inside them.
    /// </summary>
    [TestMethod]
    [DataRow(4, float.NegativeInfinity)]
    [DataRow(20, float.NaN)]
    [DataRow(33, float.PositiveInfinity)]
    public void NonFiniteInput_AnywhereInTheBatch_NamesTheLayer(int index, float value)
    {
        var (model, peft) = TinyMlp.WithLora(seed: 54);
        var values = Tensor.Randn(new Generator(3), 7, 5).ToArray();
        values[index] = value;
        var bad = new LaplaceBatch(Tensor.From(values, 7, 5), [0, 1, 2, 0, 1, 2, 0]);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => LaplaceLora.Fit(peft, model.Forward, [bad]));
        StringAssert.Contains(e.Message, "'fc1.lora_A.default' is not finite: its input activations contain");
    }

    [TestMethod]
    public void BadLabelsAndShapes_AreClearErrors()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 53);
        var x = Tensor.Randn(new Generator(2), 3, 5);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, [0, 1])])).Message, "3 examples but 2 labels");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LaplaceLora.Fit(peft, model.Forward, [new LaplaceBatch(x, [0, 1, 3])])).Message, "label 3 of example 2");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LaplaceLora.Fit(peft, model.Forward, [])).Message, "no training batches");
        model.Train();
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => LaplaceLora.Fit(peft, model.Forward, [Batch(3)])).Message, "Eval()");
    }

    /// <summary>While fitted the model computes the same logits; Dispose puts the LoraLinear layers and trainable flags back.</summary>
    [TestMethod]
    public void Fit_LeavesLogitsUnchanged_AndDisposeRestoresTheModel()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 54);
        var x = Tensor.Randn(new Generator(3), 4, 5);
        float[] before = model.Forward(x).ToArray();
        var trainable = model.NamedParameters().Select(p => p.Parameter.RequiresGrad).ToArray();
        using (var laplace = LaplaceLora.Fit(peft, model.Forward, [Batch(6)]))
        {
            CollectionAssert.AreEqual(before, model.Forward(x).ToArray());
            Assert.IsFalse(model.Parameters().Any(p => p.Grad is not null), "fitting leaves no parameter gradients");
        }
        Assert.IsInstanceOfType<LoraLinear>(model.GetModule("fc1"));
        Assert.IsInstanceOfType<LoraLinear>(model.GetModule("fc2"));
        CollectionAssert.AreEqual(trainable, model.NamedParameters().Select(p => p.Parameter.RequiresGrad).ToArray());
        CollectionAssert.AreEqual(before, model.Forward(x).ToArray());
    }

    /// <summary>Layer-wise evidence maximisation: each block's λ satisfies its own stationarity condition and beats the scalar optimum.</summary>
    [TestMethod]
    public void LayerwiseEvidence_IsAtLeastScalarEvidence()
    {
        var (model, peft) = TinyMlp.WithLora(seed: 55);
        using var laplace = LaplaceLora.Fit(peft, model.Forward, [Batch(12)], new LaplaceLoraOptions { Seed = 4 });
        laplace.OptimizePriorPrecision();
        double scalar = laplace.LogMarginalLikelihood();
        var lambdas = laplace.OptimizePriorPrecision(new PriorPrecisionOptions { Structure = PriorPrecisionStructure.Layerwise });
        CollectionAssert.AreEqual(lambdas, laplace.PriorPrecisions);
        Assert.IsTrue(laplace.LogMarginalLikelihood() >= scalar - 1e-9);
        for (int k = 0; k < lambdas.Length; k++)
        {
            var (first, _) = LaplaceMarginalLikelihood.BlockTermDerivatives(laplace.Blocks[k], lambdas[k]);
            Assert.AreEqual(0, first, 1e-6, laplace.Blocks[k].Name);
        }
    }
}
