using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Tuners;

[TestClass]
public sealed class PeftModelTests
{
    // TinyModel: d 8, mlp 12, 3 classes, 2 layers. q_proj 8→8 (+bias 8), v_proj 8→8, fc1 8→12 (+12), fc2 12→8 (+8),
    // classifier 8→3 (+3): per layer 72 + 64 + 108 + 104 = 348, total 2·348 + 27 = 723 base parameters.
    private const long BaseParameters = 723;

    private static Tensor Run(TinyModel model, Tensor x)
    {
        using (Autograd.NoGrad()) return model.Forward(x);
    }

    [TestMethod]
    public void Inject_CountsParametersAsPeft_AndPrintsItsExactLine()
    {
        var model = new TinyModel(new Generator(1));
        Assert.AreEqual(BaseParameters, model.Parameters().Sum(p => (long)p.Count));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "v_proj", "fc1" }, Rank = 4 });
        // r·(in + out) per target: q 4·16, v 4·16, fc1 4·20 → 208 per layer, 416 in all.
        long lora = 2 * (4 * (8 + 8) + 4 * (8 + 8) + 4 * (8 + 12));
        Assert.AreEqual((lora, BaseParameters + lora), peft.GetNumberOfTrainableParameters());
        Assert.AreEqual("trainable params: 416 || all params: 1,139 || trainable%: 36.5233", peft.TrainableParametersSummary());
        var writer = new StringWriter();
        peft.PrintTrainableParameters(writer);
        Assert.AreEqual(peft.TrainableParametersSummary() + Environment.NewLine, writer.ToString());
        CollectionAssert.AreEqual(
            new[] { "layers.0.attn.q_proj", "layers.0.attn.v_proj", "layers.0.mlp.fc1", "layers.1.attn.q_proj", "layers.1.attn.v_proj", "layers.1.mlp.fc1" },
            peft.TargetedModuleNames().ToArray());
        var trainable = peft.TrainableParameters().Select(p => p.Name).ToList();
        Assert.AreEqual(12, trainable.Count);
        Assert.IsTrue(trainable.All(n => n.Contains(".lora_A.default.weight", StringComparison.Ordinal) || n.Contains(".lora_B.default.weight", StringComparison.Ordinal)), string.Join(", ", trainable));
        Assert.IsTrue(model.NamedParameters().Any(p => p.Name == "layers.0.attn.q_proj.base_layer.weight"), "PEFT's in-memory names");
    }

    [TestMethod]
    public void TrainableParametersLine_MatchesPeftsPublishedExample_AndPythonRounding()
    {
        // PEFT README: Qwen2.5-3B, r = 16, alpha = 32.
        Assert.AreEqual("trainable params: 3,686,400 || all params: 3,089,625,088 || trainable%: 0.1193",
            PythonFormat.TrainableParametersLine(3_686_400, 3_089_625_088));
        // Python: format(0.03125, '.4f') == '0.0312' (exact tie, half-to-even); format(0.00125, '.4f') == '0.0013'.
        Assert.AreEqual("0.0312", PythonFormat.FixedPoint(0.03125, 4));
        Assert.AreEqual("0.0013", PythonFormat.FixedPoint(0.00125, 4));
        Assert.AreEqual("33.3333", PythonFormat.FixedPoint(100.0 / 3, 4));
        Assert.AreEqual("100.0000", PythonFormat.FixedPoint(100, 4));
    }

    [TestMethod]
    public void AtInit_TheAdaptedModelEqualsTheBaseModelExactly()
    {
        var model = new TinyModel(new Generator(2));
        var x = Input();
        var before = Run(model, x);
        PeftModel.Inject(model, new LoraConfig { TargetModules = ModuleSelector.AllLinear, Rank = 2, Alpha = 16 }, generator: new Generator(3));
        AssertBitIdentical(before, Run(model, x), "B = 0 at init");
    }

    [TestMethod]
    public void Gradients_FlowOnlyIntoLoraParameters_ModulesToSave_AndConfiguredBiases()
    {
        var model = new TinyModel(new Generator(4));
        var config = new LoraConfig
        {
            TargetModules = new[] { "q_proj", "fc1" },
            InitLoraWeights = LoraInit.Random,
            ModulesToSave = ["classifier"],
            Bias = LoraBias.LoraOnly,
        };
        var peft = PeftModel.Inject(model, config);
        model.Forward(Input()).Sum().Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool shouldTrain = name.Contains(".lora_", StringComparison.Ordinal) || name.StartsWith("classifier.", StringComparison.Ordinal) ||
                               (name.EndsWith(".base_layer.bias", StringComparison.Ordinal) && (name.Contains("q_proj", StringComparison.Ordinal) || name.Contains("fc1", StringComparison.Ordinal)));
            Assert.AreEqual(shouldTrain, p.RequiresGrad, name);
            Assert.AreEqual(shouldTrain, p.Grad is not null, $"gradient of {name}");
        }
        // PEFT counts the original classifier and the adapter's copy: 27 extra parameters.
        var (trainable, all) = peft.GetNumberOfTrainableParameters();
        long lora = 2 * (8 * 16 + 8 * 20);
        Assert.AreEqual(lora + 27 + 2 * (8 + 12), trainable);
        Assert.AreEqual(BaseParameters + lora + 27, all);
    }

    [TestMethod]
    public void BiasAll_TrainsEveryBias()
    {
        var model = new TinyModel(new Generator(5));
        PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "v_proj" }, Bias = LoraBias.All });
        var trainedBiases = model.NamedParameters().Where(p => p.Parameter.RequiresGrad && p.Name.EndsWith("bias", StringComparison.Ordinal)).Select(p => p.Name).ToList();
        CollectionAssert.AreEquivalent(
            new[] { "layers.0.attn.q_proj.bias", "layers.0.mlp.fc1.bias", "layers.0.mlp.fc2.bias", "layers.1.attn.q_proj.bias", "layers.1.mlp.fc1.bias", "layers.1.mlp.fc2.bias", "classifier.bias" },
            trainedBiases);
    }

    [TestMethod]
    public void RankAndAlphaPatterns_AndRsLora_SetPerLayerRankAndScaling()
    {
        var model = new TinyModel(new Generator(6));
        var config = new LoraConfig
        {
            TargetModules = new[] { "q_proj", "v_proj", "fc1" },
            Rank = 4,
            Alpha = 8,
            RankPattern = { ["fc1"] = 2, ["layers.1.attn.q_proj"] = 6 },
            AlphaPattern = { ["layers.1.attn.v_proj"] = 16 },
            UseRsLora = true,
        };
        PeftModel.Inject(model, config);
        LoraLinear At(string path) => (LoraLinear)model.GetModule(path);
        Assert.AreEqual(4, At("layers.0.attn.q_proj").Rank("default"));
        Assert.AreEqual(2, At("layers.0.mlp.fc1").Rank("default"));
        Assert.AreEqual(6, At("layers.1.attn.q_proj").Rank("default"));
        Assert.AreEqual(16, At("layers.1.attn.v_proj").Alpha("default"));
        Assert.AreEqual(8 / MathF.Sqrt(4), At("layers.0.attn.v_proj").Scaling("default"), 1e-7f);
        Assert.AreEqual(16 / MathF.Sqrt(4), At("layers.1.attn.v_proj").Scaling("default"), 1e-7f);
        Assert.AreEqual(8 / MathF.Sqrt(2), At("layers.1.mlp.fc1").Scaling("default"), 1e-7f);
        CollectionAssert.AreEqual(new[] { 2, 8 }, At("layers.0.mlp.fc1").LoraA("default").ShapeArray(), "A is [r, in]");
        CollectionAssert.AreEqual(new[] { 12, 2 }, At("layers.0.mlp.fc1").LoraB("default").ShapeArray(), "B is [out, r]");
    }

    [TestMethod]
    public void TargetSelection_FollowsPeftsMatchingRules()
    {
        static IReadOnlyList<string> Targets(LoraConfig config, bool lmHead = false) =>
            PeftModel.Inject(new TinyModel(new Generator(7), layerCount: 3, lmHead: lmHead), config).TargetedModuleNames();

        // A regex must match the whole name.
        CollectionAssert.AreEqual(new[] { "layers.1.attn.q_proj" }, Targets(new LoraConfig { TargetModules = @"layers\.1\..*q_proj" }).ToArray());
        // Suffixes match only at a "." boundary, and exclude_modules wins.
        CollectionAssert.AreEqual(new[] { "layers.0.mlp.fc2", "layers.2.mlp.fc2" },
            Targets(new LoraConfig { TargetModules = new[] { "fc2", "proj" }, ExcludeModules = new[] { "layers.1.mlp.fc2" } }).ToArray());
        // layers_to_transform with and without layers_pattern; PEFT reads the index after "<something>.<name>." so it
        // needs a prefix as in Hugging Face models ("model.layers.0..."): without one nothing is selected.
        static IReadOnlyList<string> Prefixed(LoraConfig config) =>
            PeftModel.Inject(new PrefixedModel(new TinyModel(new Generator(7), layerCount: 3)), config).TargetedModuleNames();
        CollectionAssert.AreEqual(new[] { "model.layers.0.attn.v_proj", "model.layers.2.attn.v_proj" },
            Prefixed(new LoraConfig { TargetModules = new[] { "v_proj" }, LayersToTransform = [0, 2] }).ToArray());
        CollectionAssert.AreEqual(new[] { "model.layers.1.attn.v_proj" },
            Prefixed(new LoraConfig { TargetModules = new[] { "v_proj" }, LayersToTransform = [1], LayersPattern = ["layers"] }).ToArray());
        Assert.ThrowsExactly<PeftConfigException>(() => Targets(new LoraConfig { TargetModules = new[] { "v_proj" }, LayersToTransform = [1] }));
        // all-linear skips the output head (lm_head); for SEQ_CLS without one it skips the classifier (a modules_to_save).
        var all = Targets(new LoraConfig { TargetModules = "ALL-LINEAR" }, lmHead: true);
        Assert.AreEqual(13, all.Count);
        Assert.IsTrue(all.Contains("classifier") && !all.Contains("lm_head"));
        var seqCls = Targets(new LoraConfig { TargetModules = ModuleSelector.AllLinear, TaskType = "SEQ_CLS" });
        Assert.AreEqual(12, seqCls.Count);
        Assert.IsFalse(seqCls.Contains("classifier"));
    }

    [TestMethod]
    public void SequenceClassification_TrainsAndSavesTheHeadAsPeftDoes()
    {
        var model = new TinyModel(new Generator(8));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj" }, TaskType = "SEQ_CLS" });
        CollectionAssert.AreEqual(new[] { "classifier", "score" }, peft.ActiveConfig.ModulesToSave!.ToArray());
        Assert.IsTrue(model.GetParameter("classifier.weight").RequiresGrad);
        CollectionAssert.Contains(peft.GetAdapterStateDict().Keys.ToList(), "base_model.model.classifier.bias");
    }

    [TestMethod]
    public void TokenClassification_TrainsAndSavesTheHeadAsPeftDoes()
    {
        var model = new TinyModel(new Generator(8));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj" }, TaskType = "TOKEN_CLS" });
        CollectionAssert.AreEqual(new[] { "classifier", "score" }, peft.ActiveConfig.ModulesToSave!.ToArray());
        Assert.IsTrue(model.GetParameter("classifier.weight").RequiresGrad);
        Assert.IsFalse(model.GetParameter("layers.0.attn.q_proj.base_layer.weight").RequiresGrad);
        CollectionAssert.Contains(peft.GetAdapterStateDict().Keys.ToList(), "base_model.model.classifier.weight");
    }

    [TestMethod]
    public void BadTargets_FailBeforeAnythingChanges_NamingTheLinearLayers()
    {
        var model = new TinyModel(new Generator(9));
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "query", "value" } }));
        StringAssert.Contains(e.Message, "matched no module");
        StringAssert.Contains(e.Message, "layers.0.attn.q_proj, layers.0.attn.v_proj, layers.0.mlp.fc1");
        Assert.IsFalse(model.NamedModules().Any(m => m.Module is LoraLinear));
        Assert.IsTrue(model.Parameters().All(p => p.RequiresGrad), "a failed injection leaves the model untouched");

        var notLinear = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "attn" } }));
        StringAssert.Contains(notLinear.Message, "'layers.0.attn' is a Attention");
        var missing = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new LoraConfig()));
        StringAssert.Contains(missing.Message, "target_modules is not set");
        var badRank = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj" }, Rank = 0 }));
        StringAssert.Contains(badRank.Message, "r must be a positive integer");
    }

    [TestMethod]
    public void Adapters_SwitchDisableAndAddUp()
    {
        var model = new TinyModel(new Generator(10));
        var x = Input();
        var baseOut = Run(model, x);
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "fc1" }, InitLoraWeights = LoraInit.Random }, "first", new Generator(11));
        peft.AddAdapter("second", new LoraConfig { TargetModules = new[] { "v_proj" }, InitLoraWeights = LoraInit.Random, Rank = 3 });
        CollectionAssert.AreEqual(new[] { "first", "second" }, peft.AdapterNames.ToArray());
        Assert.AreEqual("first", peft.ActiveAdapter);
        var first = Run(model, x);
        Assert.IsTrue(peft.TrainableParameters().All(p => p.Name.Contains(".first.", StringComparison.Ordinal)), "only the active adapter trains");

        peft.SetAdapter("second");
        var second = Run(model, x);
        Assert.IsTrue(peft.TrainableParameters().All(p => p.Name.Contains(".second.", StringComparison.Ordinal)));
        Assert.IsTrue(MaxAbsDiff(first, second) > 1e-3 && MaxAbsDiff(baseOut, second) > 1e-3);

        using (peft.DisableAdapters())
        {
            AssertBitIdentical(baseOut, Run(model, x), "disabled adapters give the base model");
            Assert.IsFalse(peft.TrainableParameters().Any());
        }
        AssertBitIdentical(second, Run(model, x), "re-enabled");
        Assert.IsTrue(peft.TrainableParameters().Any());

        // Both at once: on this model the two adapters touch different layers, so the result is not a plain sum, but
        // each layer's own update is applied exactly once.
        peft.SetAdapters(["first", "second"]);
        Assert.AreEqual(2, ((LoraLinear)model.GetModule("layers.0.attn.q_proj")).ActiveAdapters.Count + ((LoraLinear)model.GetModule("layers.0.attn.v_proj")).ActiveAdapters.Count);
        peft.SetAdapter("first");
        AssertBitIdentical(first, Run(model, x), "switching back reproduces the first adapter");
        Assert.ThrowsExactly<KeyNotFoundException>(() => peft.SetAdapter("third"));
    }

    [TestMethod]
    public void MergeUnmerge_AndMergeAndUnload_KeepTheFunction()
    {
        var model = new TinyModel(new Generator(12));
        var x = Input();
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = ModuleSelector.AllLinear, InitLoraWeights = LoraInit.Random }, generator: new Generator(13));
        var baseWeights = model.NamedParameters().Where(p => p.Name.EndsWith("base_layer.weight", StringComparison.Ordinal)).ToDictionary(p => p.Name, p => p.Parameter.Clone());
        var adapted = Run(model, x);

        peft.MergeAdapter();
        Assert.IsTrue(MaxAbsDiff(adapted, Run(model, x)) <= 1e-5, $"merged: {MaxAbsDiff(adapted, Run(model, x))}");
        Assert.ThrowsExactly<InvalidOperationException>(() => peft.MergeAdapter());
        peft.UnmergeAdapter();
        foreach (var (name, w) in baseWeights) Assert.IsTrue(MaxAbsDiff(w, model.GetParameter(name)) <= 1e-6, name);
        Assert.IsTrue(MaxAbsDiff(adapted, Run(model, x)) <= 1e-5);

        var unloaded = (TinyModel)peft.MergeAndUnload();
        Assert.IsFalse(unloaded.NamedModules().Any(m => m.Module is LoraLinear), "adapter layers removed");
        Assert.IsTrue(unloaded.NamedParameters().All(p => !p.Name.Contains("lora_", StringComparison.Ordinal) && !p.Name.Contains("base_layer", StringComparison.Ordinal)));
        Assert.IsTrue(MaxAbsDiff(adapted, Run(unloaded, x)) <= 1e-5);
        Assert.ThrowsExactly<InvalidOperationException>(() => peft.SetAdapter("default"));
    }

    [TestMethod]
    public void SafeMerge_IsAllOrNothing_AcrossLayers()
    {
        var model = new TinyModel(new Generator(15));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "fc2" }, InitLoraWeights = LoraInit.Random });
        var weights = model.NamedParameters().Where(p => p.Name.EndsWith("base_layer.weight", StringComparison.Ordinal)).ToDictionary(p => p.Name, p => p.Parameter.ToArray());
        // The last adapted layer (layers.1.mlp.fc2) has a NaN update: its merge is refused after three layers merged.
        using (Autograd.NoGrad()) ((LoraLinear)model.GetModule("layers.1.mlp.fc2")).LoraB("default").Fill_(float.NaN);
        Assert.ThrowsExactly<InvalidOperationException>(() => peft.MergeAdapter(safeMerge: true));
        Assert.AreEqual(0, peft.TunerLayers().Sum(t => t.Layer.MergedAdapters.Count), "no layer stays merged");
        foreach (var (name, w) in weights) Assert.IsTrue(MaxAbsDiff(Tensor.From(w, w.Length), model.GetParameter(name).Reshape(-1)) <= 1e-6, name);
    }

    [TestMethod]
    public void Unload_GivesBackTheBaseModel_AndDisableUnmergesFirst()
    {
        var model = new TinyModel(new Generator(14));
        var x = Input();
        var baseOut = Run(model, x);
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "fc2" }, InitLoraWeights = LoraInit.Random, ModulesToSave = ["classifier"] });
        using (Autograd.NoGrad()) model.GetParameter("classifier.bias").Add_(Tensor.Full(0.5f, 3));
        var adapted = Run(model, x);
        peft.MergeAdapter();
        using (peft.DisableAdapters())
        {
            Assert.IsTrue(MaxAbsDiff(baseOut, Run(model, x)) <= 1e-5, "disabling unmerges and uses the original head");
            Assert.AreEqual(0, peft.TunerLayers().Sum(t => t.Layer.MergedAdapters.Count));
        }
        Assert.IsTrue(MaxAbsDiff(adapted, Run(model, x)) <= 1e-5);
        var restored = (TinyModel)peft.Unload();
        Assert.IsInstanceOfType<Linear>(restored.Layers.Module[0].Mlp.Module.Fc2.Module);
        // The adapter's trained head stays (PEFT's unload keeps modules_to_save's active copy); the rest is the base.
        Assert.AreEqual(0.5f, restored.GetParameter("classifier.bias").At(0) - new TinyModel(new Generator(14)).GetParameter("classifier.bias").At(0), 1e-6f);
    }

    /// <summary>A root holding the model under "model", as Hugging Face's *ForCausalLM classes do.</summary>
    private sealed class PrefixedModel : Module
    {
        public PrefixedModel(Module inner) => RegisterModule("model", inner);
    }
}
