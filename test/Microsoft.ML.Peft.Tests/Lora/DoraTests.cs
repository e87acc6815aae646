using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>
/// DoRA against build/reference/lora_variants_reference.py (Fixtures/lora/dora_linear.*): forward, gradients of A,
/// B, the magnitude and the input with and without dropout, the merged weight; plus PEFT's bookkeeping.
/// </summary>
[TestClass]
public sealed class DoraTests
{
    private const float Dropout = 0.25f;

    private static (LoraLinear Layer, Dictionary<string, Tensor> F) FixtureLayer()
    {
        var f = LoraFixtures.Load("dora_linear.safetensors");
        var layer = new LoraLinear(new Linear(f["base.weight"].Clone(), f["base.bias"].Clone()));
        layer.UpdateLayer("default", 4, 8, 0, false, LoraInit.Default, new Generator(0), useDora: true);
        layer.SetActiveAdapters(["default"], trainable: true);
        using (Autograd.NoGrad())
        {
            layer.LoraA("default").CopyFrom_(f["lora_A"]);
            layer.LoraB("default").CopyFrom_(f["lora_B"]);
        }
        return (layer, f);
    }

    private static void SetMagnitude(LoraLinear layer, Tensor m)
    {
        using (Autograd.NoGrad()) layer.Magnitude("default").CopyFrom_(m);
    }

    [TestMethod]
    public void MagnitudeInit_IsTheRowNormOfTheAdaptedWeight_AsPyTorch()
    {
        var (layer, f) = FixtureLayer();
        var norm = DoraMagnitude.WeightNorm(layer.Base is Linear l ? l.Weight : throw new InvalidOperationException(), layer.LoraA("default"), layer.LoraB("default"), layer.Scaling("default"));
        LoraFixtures.AssertClose(f["magnitude.init"], norm, 1e-6, 1e-6, "||W + sBA||");
        // A fresh default DoRA adapter has B = 0, so its magnitude is ||W|| per row, computed by hand in double.
        var w = f["base.weight"].ToArray();
        var fresh = new LoraLinear(new Linear(f["base.weight"].Clone(), f["base.bias"].Clone()));
        fresh.UpdateLayer("default", 4, 8, 0, false, LoraInit.Default, new Generator(3), useDora: true);
        var m = fresh.Magnitude("default").ToArray();
        for (int row = 0; row < 5; row++)
        {
            double sum = 0;
            for (int c = 0; c < 6; c++) sum += (double)w[row * 6 + c] * w[row * 6 + c];
            Assert.AreEqual(Math.Sqrt(sum), m[row], 1e-6, $"row {row}");
        }
    }

    [TestMethod]
    public void ForwardAndGradients_WithoutDropout_MatchPyTorch()
    {
        var (layer, f) = FixtureLayer();
        SetMagnitude(layer, f["magnitude"]);
        var x = f["input"].Clone().RequiresGrad_();
        var y = layer.Forward(x);
        y.Mul(f["loss.projection"]).Sum().Backward();
        AssertCase(f, "eval", layer, x, y);
    }

    [TestMethod]
    public void ForwardAndGradients_WithAFixedDropoutMask_MatchPyTorch()
    {
        var (layer, f) = FixtureLayer();
        SetMagnitude(layer, f["magnitude"]);
        var x = f["input"].Clone().RequiresGrad_();
        // The training path with dropout: the base result is recomputed from the dropped input (no bias).
        var dropped = x.Mul(f["dropout.mask"]).Div(1f - Dropout);
        var y = layer.Base.Forward(x).Add(layer.DoraTerm("default", dropped, null));
        y.Mul(f["loss.projection"]).Sum().Backward();
        AssertCase(f, "dropout", layer, x, y);
    }

    [TestMethod]
    public void RealDropout_TakesTheRecomputedPath_AndEvalReusesTheBaseResult()
    {
        var f = LoraFixtures.Load("dora_linear.safetensors");
        var layer = new LoraLinear(new Linear(f["base.weight"].Clone(), f["base.bias"].Clone()));
        layer.UpdateLayer("default", 4, 8, Dropout, false, LoraInit.Default, new Generator(0), useDora: true);
        layer.SetActiveAdapters(["default"], trainable: true);
        using (Autograd.NoGrad())
        {
            layer.LoraA("default").CopyFrom_(f["lora_A"]);
            layer.LoraB("default").CopyFrom_(f["lora_B"]);
        }
        SetMagnitude(layer, f["magnitude"]);
        layer.Eval();
        LoraFixtures.AssertClose(f["eval.output"], layer.Forward(f["input"]), 2e-6, 1e-6, "eval output with dropout configured");
        layer.Train();
        var training = layer.Forward(f["input"]);
        Assert.IsTrue(LoraFixtures.MaxAbsDiff(f["eval.output"], training) > 1e-3, "dropout changes the training output");
    }

    [TestMethod]
    public void Merge_GivesPyTorchsWeight_AndTheSameOutput_AndUnmergeRestores()
    {
        var (layer, f) = FixtureLayer();
        SetMagnitude(layer, f["magnitude"]);
        layer.Eval();
        var before = layer.Forward(f["input"]);
        var original = ((Linear)layer.Base).Weight.ToArray();
        layer.Merge();
        LoraFixtures.AssertClose(f["merged.weight"], ((Linear)layer.Base).Weight, 1e-6, 1e-6, "merged weight");
        var merged = layer.Forward(f["input"]);
        Assert.IsTrue(LoraFixtures.MaxAbsDiff(before, merged) <= 1e-5, $"merged output differs by {LoraFixtures.MaxAbsDiff(before, merged)}");
        layer.Unmerge();
        var restored = ((Linear)layer.Base).Weight.ToArray();
        for (int i = 0; i < original.Length; i++) Assert.AreEqual(original[i], restored[i], 1e-6, $"weight[{i}] after unmerge");
    }

    [TestMethod]
    public void Gpt2Conv1DBase_GivesTheSameOutputAndMergedWeightAsTheLinearBase()
    {
        var (linearLayer, f) = FixtureLayer();
        SetMagnitude(linearLayer, f["magnitude"]);
        var conv = new LoraLinear(new Conv1D(f["base.weight"].Transpose(0, 1).Contiguous(), f["base.bias"].Clone()));
        conv.UpdateLayer("default", 4, 8, 0, false, LoraInit.Default, new Generator(0), useDora: true);
        conv.SetActiveAdapters(["default"], trainable: true);
        using (Autograd.NoGrad())
        {
            conv.LoraA("default").CopyFrom_(f["lora_A"]);
            conv.LoraB("default").CopyFrom_(f["lora_B"]);
        }
        SetMagnitude(conv, f["magnitude"]);
        LoraFixtures.AssertClose(f["eval.output"], conv.Forward(f["input"]), 2e-6, 1e-6, "Conv1D DoRA output");
        conv.Merge();
        var merged = ((Conv1D)conv.Base).Weight.Transpose(0, 1).Contiguous();
        LoraFixtures.AssertClose(f["merged.weight"], merged, 1e-6, 1e-6, "Conv1D merged weight, transposed back");
        conv.Unmerge();
        LoraFixtures.AssertClose(f["base.weight"], ((Conv1D)conv.Base).Weight.Transpose(0, 1).Contiguous(), 1e-6, 0, "Conv1D unmerged");
        _ = linearLayer;
    }

    [TestMethod]
    public void AtInit_DoraIsTheIdentity_BitForBit()
    {
        var g = new Generator(7);
        var model = new TinyModel(g);
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        PeftModel.Inject(model, new LoraConfig { TargetModules = ModuleSelector.AllLinear, UseDora = true, Rank = 2 }, generator: new Generator(1));
        CollectionAssert.AreEqual(expected, model.Forward(x).ToArray());
    }

    [TestMethod]
    public void TrainableCount_IsLoraPlusOneMagnitudePerOutputRow_AndOnlyAdapterTensorsGetGradients()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "fc1" }, UseDora = true, Rank = 2, InitLoraWeights = LoraInit.Random }, generator: new Generator(1));
        // 2 layers × (q_proj 8→8: r(8 + 8) + 8, fc1 8→12: r(8 + 12) + 12).
        long expected = 2 * ((2 * (8 + 8) + 8) + (2 * (8 + 12) + 12));
        Assert.AreEqual(expected, peft.GetNumberOfTrainableParameters().Trainable);
        model.Forward(LoraFixtures.Input()).Sum().Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool adapter = name.Contains(".lora_", StringComparison.Ordinal);
            Assert.AreEqual(adapter, p.Grad is not null, $"{name}: gradient {(adapter ? "missing" : "where none belongs")}");
            if (adapter) Assert.IsTrue(p.Grad!.ToArray().Any(v => v != 0), $"{name}: all-zero gradient");
        }
        Assert.IsTrue(model.NamedParameters().Any(p => p.Name.EndsWith(".lora_magnitude_vector.default.weight", StringComparison.Ordinal)));
    }

    [TestMethod]
    public void SaveLoad_UsesPeftsMagnitudeKey_AndReproducesOutputsBitForBit()
    {
        var model = new TinyModel(new Generator(7));
        var config = new LoraConfig { TargetModules = new[] { "q_proj", "v_proj" }, UseDora = true, Rank = 2, InitLoraWeights = LoraInit.Random };
        var peft = PeftModel.Inject(model, config, generator: new Generator(1));
        using (Autograd.NoGrad())
        {
            foreach (var (_, layer) in peft.TunerLayers()) ((LoraLinear)layer).Magnitude("default").Mul_(1.25f);
        }
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        var keys = peft.GetAdapterStateDict().Keys.ToList();
        CollectionAssert.Contains(keys, "base_model.model.layers.0.attn.q_proj.lora_magnitude_vector");
        Assert.AreEqual(12, keys.Count, "A, B and magnitude of 4 layers");
        string dir = Path.Combine(Path.GetTempPath(), "dora-" + Guid.NewGuid().ToString("N"));
        try
        {
            peft.SavePretrained(dir);
            StringAssert.Contains(File.ReadAllText(Path.Combine(dir, "adapter_config.json")), "\"use_dora\": true");
            var fresh = new TinyModel(new Generator(7));
            var loaded = PeftModel.FromPretrained(fresh, dir);
            Assert.IsTrue(((LoraLinear)fresh.GetModule("layers.1.attn.v_proj")).UsesDora("default"));
            CollectionAssert.AreEqual(expected, fresh.Forward(x).ToArray());
            Assert.AreEqual(0, loaded.GetNumberOfTrainableParameters().Trainable);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void QuantizedBase_IsRefusedBeforeAnyLayerIsWrapped()
    {
        var model = new TinyModel(new Generator(7), d: 64, hidden: 64);
        const string path = "layers.1.attn.q_proj";
        model.ReplaceModule(path, QuantizedLinear.FromLinear((Linear)model.GetModule(path), new QuantizationOptions { DoubleQuant = false }));
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "v_proj" }, UseDora = true }));
        StringAssert.Contains(e.Message, path + " (QuantizedLinear)");
        Assert.IsFalse(model.NamedModules().Any(m => m.Module is ITunerLayer), "the model is left untouched");
    }

    [TestMethod]
    public void ConfigJson_RoundTripsUseDora()
    {
        var config = (LoraConfig)PeftConfig.FromJson("{\"peft_type\": \"LORA\", \"use_dora\": true, \"target_modules\": [\"q_proj\"]}");
        Assert.IsTrue(config.UseDora);
        Assert.IsTrue(((LoraConfig)PeftConfig.FromJson(config.ToJson())).UseDora);
        Assert.IsFalse(((LoraConfig)PeftConfig.FromJson("{\"peft_type\": \"LORA\"}")).UseDora);
    }

    private static void AssertCase(Dictionary<string, Tensor> f, string name, LoraLinear layer, Tensor x, Tensor y)
    {
        LoraFixtures.AssertClose(f[$"{name}.output"], y, 2e-6, 1e-6, $"{name} output");
        LoraFixtures.AssertClose(f[$"{name}.grad.lora_A"], layer.LoraA("default").Grad!, 1e-5, 1e-5, $"{name} dA");
        LoraFixtures.AssertClose(f[$"{name}.grad.lora_B"], layer.LoraB("default").Grad!, 1e-5, 1e-5, $"{name} dB");
        LoraFixtures.AssertClose(f[$"{name}.grad.magnitude"], layer.Magnitude("default").Grad!, 1e-5, 1e-5, $"{name} dm");
        LoraFixtures.AssertClose(f[$"{name}.grad.input"], x.Grad!, 1e-5, 1e-5, $"{name} dx");
    }
}
