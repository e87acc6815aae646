using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>
/// LoRA merge/unmerge on GPT-2's Conv1D layers (weight stored [in, out], PEFT's fan_in_fan_out) of the tiny GPT-2
/// fixture checkpoint (Fixtures/reference/models/gpt2), with c_attn, c_proj (attn and mlp) and c_fc adapted and B
/// random (init_lora_weights = false), so every adapter changes the output. References: the unmerged adapted model's
/// own logits, the checkpoint's weights, and W + (s·B·A)ᵀ computed here in double.
/// </summary>
[TestClass]
public sealed class Gpt2Conv1DMergeTests
{
    private static readonly string[] Targets = ["c_attn", "c_proj", "c_fc"];

    /// <summary>The six Conv1D layers the targets match in the 2-layer fixture.</summary>
    private static readonly string[] AdaptedPaths =
    [
        "transformer.h.0.attn.c_attn", "transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_fc", "transformer.h.0.mlp.c_proj",
        "transformer.h.1.attn.c_attn", "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_fc", "transformer.h.1.mlp.c_proj",
    ];

    private static CausalLanguageModel LoadModel()
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Fixture("reference", "models", "gpt2"));
        model.Eval();
        return model;
    }

    private static LoraConfig Config() => new()
    {
        Rank = 4, Alpha = 8, TargetModules = Targets, InitLoraWeights = LoraInit.Random,
    };

    private static Tensor InputIds()
    {
        var g = new Generator(11);
        var ids = new int[2 * 9];
        for (int i = 0; i < ids.Length; i++) ids[i] = (int)(g.NextUInt64() % 113);
        return Tensor.FromInt32(ids, 2, 9);
    }

    private static Tensor Logits(CausalLanguageModel model)
    {
        using var noGrad = Autograd.NoGrad();
        Tensor logits;
        using (TensorScope.Untracked()) logits = model.Forward(InputIds()).Contiguous();
        return logits;
    }

    private static Dictionary<string, float[]> Conv1DWeights(Module model) =>
        AdaptedPaths.ToDictionary(p => p, p => ((Conv1D)model.GetModule(p)).Weight.ToArray());

    private static Conv1D BaseConv(Module model, string path) => (Conv1D)((LoraLinear)model.GetModule(path)).Base;

    [TestMethod]
    public void MergedLogits_EqualUnmergedAdaptedLogits_AndUnmergeRestoresTheCheckpointWeights()
    {
        var model = LoadModel();
        var original = Conv1DWeights(model);
        var baseLogits = Logits(model);

        var peft = PeftModel.Inject(model, Config(), "default", new Generator(3));
        var adapted = Logits(model);
        Assert.IsTrue(LoraFixtures.MaxAbsDiff(baseLogits, adapted) > 1e-2, "random B must change the logits, or the merge test proves nothing");

        peft.MergeAdapter();
        foreach (var path in AdaptedPaths)
            CollectionAssert.AreEqual(new[] { "default" }, ((LoraLinear)model.GetModule(path)).MergedAdapters.ToArray(), path);
        LoraFixtures.AssertClose(adapted, Logits(model), atol: 1e-5, what: "merged logits");

        peft.UnmergeAdapter();
        foreach (var path in AdaptedPaths)
        {
            var restored = BaseConv(model, path).Weight;
            LoraFixtures.AssertClose(Tensor.From(original[path], restored.ShapeArray()), restored, atol: 1e-6, what: path + ".weight after unmerge");
        }
        LoraFixtures.AssertClose(adapted, Logits(model), atol: 1e-5, what: "logits after unmerge");
    }

    [TestMethod]
    public void Merge_AddsTransposeOfScaledBA_ToTheInOutWeight()
    {
        var model = LoadModel();
        var original = Conv1DWeights(model);
        var peft = PeftModel.Inject(model, Config(), "default", new Generator(5));
        peft.MergeAdapter(safeMerge: true);

        foreach (var path in AdaptedPaths)
        {
            var layer = (LoraLinear)model.GetModule(path);
            Assert.IsTrue(layer.FanInFanOut, path);
            var a = layer.LoraA("default").ToArray();        // [r, in]
            var b = layer.LoraB("default").ToArray();        // [out, r]
            int rank = layer.Rank("default"), inF = layer.InFeatures, outF = layer.OutFeatures;
            double s = layer.Scaling("default");
            Assert.AreEqual(2.0, s, 0.0, "alpha 8 / r 4");
            var merged = BaseConv(model, path).Weight;
            CollectionAssert.AreEqual(new[] { inF, outF }, merged.ShapeArray(), path + ": Conv1D keeps [in, out]");
            var w = merged.ToArray();
            for (int i = 0; i < inF; i++)
            {
                for (int o = 0; o < outF; o++)
                {
                    double delta = 0;
                    for (int k = 0; k < rank; k++) delta += (double)b[o * rank + k] * a[k * inF + i];
                    double expected = original[path][i * outF + o] + s * delta;
                    Assert.AreEqual(expected, w[i * outF + o], 1e-6 + 1e-6 * Math.Abs(expected), $"{path}.weight[{i}, {o}]");
                }
            }
        }
    }

    [TestMethod]
    public void MergeAndUnload_GivesBackConv1DLayersWithTheAdaptedOutput()
    {
        var model = LoadModel();
        var peft = PeftModel.Inject(model, Config(), "default", new Generator(7));
        var adapted = Logits(model);

        var unloaded = (CausalLanguageModel)peft.MergeAndUnload();
        Assert.AreSame(model, unloaded);
        foreach (var path in AdaptedPaths)
        {
            var conv = unloaded.GetModule(path) as Conv1D;
            Assert.IsNotNull(conv, $"{path} is a Conv1D again");
        }
        Assert.IsFalse(unloaded.NamedParameters().Any(p => p.Name.Contains("lora_", StringComparison.Ordinal)));
        LoraFixtures.AssertClose(adapted, Logits(unloaded), atol: 1e-5, what: "logits after merge_and_unload");
    }

    [TestMethod]
    public void Injection_SetsFanInFanOut_AndKeepsPeftAdapterShapes()
    {
        var model = LoadModel();
        var config = Config();
        Assert.IsFalse(config.FanInFanOut);
        var peft = PeftModel.Inject(model, config, "default", new Generator(9));
        Assert.IsTrue(((LoraConfig)peft.PeftConfigs["default"]).FanInFanOut, "PEFT sets fan_in_fan_out = True for Conv1D targets");

        var state = peft.GetAdapterStateDict();
        CollectionAssert.AreEqual(new[] { 4, 32 }, state["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"].ShapeArray(), "A [r, in]");
        CollectionAssert.AreEqual(new[] { 96, 4 }, state["base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"].ShapeArray(), "B [out, r]");
        CollectionAssert.AreEqual(new[] { 4, 37 }, state["base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight"].ShapeArray(), "A [r, in]");
        CollectionAssert.AreEqual(new[] { 32, 4 }, state["base_model.model.transformer.h.1.mlp.c_proj.lora_B.weight"].ShapeArray(), "B [out, r]");

        // The other way round: fan_in_fan_out = true on nn.Linear targets is reset to false, as PEFT does.
        var linearConfig = new LoraConfig { Rank = 2, TargetModules = new[] { "q_proj" }, FanInFanOut = true };
        var tiny = PeftModel.Inject(new TinyModel(new Generator(1)), linearConfig, "default", new Generator(2));
        Assert.IsFalse(((LoraConfig)tiny.PeftConfigs["default"]).FanInFanOut);
        Assert.IsFalse(((LoraLinear)tiny.Model.GetModule("layers.0.attn.q_proj")).FanInFanOut);
    }

    [TestMethod]
    public void SaveAndReload_OnGpt2_RoundTripsTheAdapterAndItsMergedOutput()
    {
        var folder = Path.Combine(Path.GetTempPath(), "peft-gpt2-conv1d-" + Guid.NewGuid().ToString("N"));
        try
        {
            var model = LoadModel();
            var peft = PeftModel.Inject(model, Config(), "default", new Generator(13));
            var adapted = Logits(model);
            peft.SavePretrained(folder);
            StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "adapter_config.json")), "\"fan_in_fan_out\": true");

            var reloadedModel = LoadModel();
            var reloaded = PeftModel.FromPretrained(reloadedModel, folder);
            LoraFixtures.AssertClose(adapted, Logits(reloadedModel), atol: 1e-6, what: "reloaded adapter logits");
            reloaded.MergeAdapter();
            LoraFixtures.AssertClose(adapted, Logits(reloadedModel), atol: 1e-5, what: "reloaded merged logits");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
