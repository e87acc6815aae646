using Microsoft.ML.Peft.IA3;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.IA3;

[TestClass]
public sealed class IA3Tests
{
    // TinyModel (see LoraTestSupport): d 8, mlp 12, 3 classes, 2 layers, 723 base parameters.
    private const long BaseParameters = 723;

    private static IA3Config KeysValuesAndFc2(bool initOnes = true) => new()
    {
        TargetModules = new[] { "q_proj", "v_proj", "fc2" },
        FeedForwardModules = new[] { "fc2" },
        InitIA3Weights = initOnes,
    };

    private static Tensor Run(TinyModel model, Tensor x)
    {
        using (Autograd.NoGrad()) return model.Forward(x);
    }

    [TestMethod]
    public void TrainableCount_IsOneVectorPerTarget_OutForKeysValues_InForFeedForward()
    {
        var model = new TinyModel(new Generator(1));
        var peft = PeftModel.Inject(model, KeysValuesAndFc2());
        // q_proj out 8 + v_proj out 8 + fc2 in 12 = 28 per layer, two layers.
        Assert.AreEqual((56L, BaseParameters + 56), peft.GetNumberOfTrainableParameters());
        Assert.AreEqual("trainable params: 56 || all params: 779 || trainable%: 7.1887", peft.TrainableParametersSummary());
        var writer = new StringWriter();
        peft.PrintTrainableParameters(writer);
        Assert.AreEqual(peft.TrainableParametersSummary() + Environment.NewLine, writer.ToString());
        CollectionAssert.AreEqual(new[] { 8, 1 }, ((IA3Linear)model.GetModule("layers.0.attn.q_proj")).Vector("default").ShapeArray());
        CollectionAssert.AreEqual(new[] { 1, 12 }, ((IA3Linear)model.GetModule("layers.1.mlp.fc2")).Vector("default").ShapeArray());
        CollectionAssert.AreEquivalent(
            new[] { "layers.0.attn.q_proj.ia3_l.default", "layers.0.attn.v_proj.ia3_l.default", "layers.0.mlp.fc2.ia3_l.default",
                    "layers.1.attn.q_proj.ia3_l.default", "layers.1.attn.v_proj.ia3_l.default", "layers.1.mlp.fc2.ia3_l.default" },
            peft.TrainableParameters().Select(p => p.Name).ToArray());
    }

    [TestMethod]
    public void AtInit_VectorsAreOnes_AndTheModelIsUnchangedBitForBit()
    {
        var model = new TinyModel(new Generator(2));
        var x = Input();
        var before = Run(model, x);
        var peft = PeftModel.Inject(model, KeysValuesAndFc2());
        foreach (var (_, layer) in peft.TunerLayers())
            Assert.IsTrue(((IA3Linear)layer).Vector("default").ToArray().All(v => v == 1f));
        AssertBitIdentical(before, Run(model, x), "(IA)³ with ones");
    }

    [TestMethod]
    public void Forward_ScalesOutputIncludingBias_OrInputForFeedForward_AsTheFormula()
    {
        var g = new Generator(3);
        var x = Tensor.Randn(g, 2, 3, 5);
        foreach (bool feedForward in new[] { false, true })
        {
            var linear = new Linear(5, 4, g);
            var layer = new IA3Linear(linear, feedForward);
            layer.UpdateLayer("default", initOnes: false, g);
            layer.SetActiveAdapters(["default"], trainable: true);
            Tensor y;
            using (Autograd.NoGrad()) y = layer.Forward(x);
            float[] w = linear.Weight.ToArray(), b = linear.Bias!.ToArray(), l = layer.Vector("default").ToArray(), xs = x.ToArray(), ys = y.ToArray();
            for (int row = 0; row < 6; row++)
            {
                for (int o = 0; o < 4; o++)
                {
                    double sum = 0;
                    for (int k = 0; k < 5; k++) sum += (double)xs[row * 5 + k] * (feedForward ? l[k] : 1) * w[o * 5 + k];
                    double expected = feedForward ? sum + b[o] : (sum + b[o]) * l[o];
                    Assert.AreEqual(expected, ys[row * 4 + o], 1e-5, $"feedForward {feedForward}, row {row}, out {o}");
                }
            }
        }
    }

    [TestMethod]
    public void Gradients_FlowOnlyIntoTheVectors_AndMatchFiniteDifferences()
    {
        var model = new TinyModel(new Generator(4));
        var peft = PeftModel.Inject(model, KeysValuesAndFc2(initOnes: false));
        model.Forward(Input()).Sum().Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool vector = name.Contains(".ia3_l.", StringComparison.Ordinal);
            Assert.AreEqual(vector, p.RequiresGrad, name);
            Assert.AreEqual(vector, p.Grad is not null, $"gradient of {name}");
        }

        var g = new Generator(5);
        var x = Tensor.Randn(g, 3, 5);
        foreach (bool feedForward in new[] { false, true })
        {
            var layer = new IA3Linear(new Linear(5, 4, g), feedForward);
            layer.UpdateLayer("default", initOnes: false, g);
            layer.SetActiveAdapters(["default"], trainable: true);
            GradCheck.Check(_ => layer.Forward(x), [layer.Vector("default")]);
        }
    }

    [TestMethod]
    public void Merge_MatchesUnmerged_AndUnmergeRestoresTheWeights()
    {
        var model = new TinyModel(new Generator(6));
        var peft = PeftModel.Inject(model, KeysValuesAndFc2(initOnes: false));
        var x = Input();
        var unmerged = Run(model, x);
        var q = (Linear)((IA3Linear)model.GetModule("layers.0.attn.q_proj")).Base;
        var fc2 = (Linear)((IA3Linear)model.GetModule("layers.0.mlp.fc2")).Base;
        var qWeight = q.Weight.Clone();
        var qBias = q.Bias!.Clone();
        var fc2Weight = fc2.Weight.Clone();
        var fc2Bias = fc2.Bias!.Clone();

        peft.MergeAdapter();
        Assert.IsTrue(MaxAbsDiff(unmerged, Run(model, x)) <= 1e-5, $"merged vs unmerged: {MaxAbsDiff(unmerged, Run(model, x))}");
        var l = ((IA3Linear)model.GetModule("layers.0.attn.q_proj")).Vector("default").ToArray();
        Assert.AreEqual(qWeight.ToArray()[3 * 8 + 2] * l[3], q.Weight.ToArray()[3 * 8 + 2], 1e-6, "row 3 scaled by l[3]");
        Assert.AreEqual(qBias.ToArray()[3] * l[3], q.Bias!.ToArray()[3], 1e-6, "output scaling scales the bias");
        AssertBitIdentical(fc2Bias, fc2.Bias!, "input scaling leaves the bias alone");

        peft.UnmergeAdapter();
        Assert.IsTrue(MaxAbsDiff(qWeight, q.Weight) <= 1e-5);
        Assert.IsTrue(MaxAbsDiff(qBias, q.Bias!) <= 1e-5);
        Assert.IsTrue(MaxAbsDiff(fc2Weight, fc2.Weight) <= 1e-5);
        Assert.IsTrue(MaxAbsDiff(unmerged, Run(model, x)) <= 1e-5);

        var merged = peft.MergeAndUnload();
        Assert.IsFalse(merged.NamedModules().Any(m => m.Module is ITunerLayer));
        Assert.IsTrue(MaxAbsDiff(unmerged, Run(model, x)) <= 1e-5);
    }

    [TestMethod]
    public void SafeMerge_RefusesNonFiniteVectors_AndLeavesEveryLayerUnchanged()
    {
        var model = new TinyModel(new Generator(11));
        var peft = PeftModel.Inject(model, KeysValuesAndFc2(initOnes: false));
        var x = Input();
        var v = ((IA3Linear)model.GetModule("layers.1.attn.v_proj")).Vector("default");
        using (Autograd.NoGrad()) v.Narrow(0, 2, 1).Fill_(float.PositiveInfinity);
        var withInf = Run(model, x);
        Assert.ThrowsExactly<InvalidOperationException>(() => peft.MergeAdapter(safeMerge: true));
        Assert.IsTrue(peft.TunerLayers().All(t => t.Layer.MergedAdapters.Count == 0), "all or nothing");
        AssertBitIdentical(withInf, Run(model, x), "unchanged after the refused merge");
    }

    [TestMethod]
    public void DisableAdapters_GivesTheBaseModel()
    {
        var model = new TinyModel(new Generator(7));
        var x = Input();
        var before = Run(model, x);
        var peft = PeftModel.Inject(model, KeysValuesAndFc2(initOnes: false));
        Assert.IsTrue(MaxAbsDiff(before, Run(model, x)) > 1e-3, "random vectors change the output");
        using (peft.DisableAdapters()) AssertBitIdentical(before, Run(model, x), "disabled");
    }

    [TestMethod]
    public void SaveLoad_UsesPeftKeysAndShapes_AndReproducesOutputsBitForBit()
    {
        string dir = Path.Combine(Path.GetTempPath(), "ia3-" + Guid.NewGuid().ToString("N"));
        try
        {
            var model = new TinyModel(new Generator(8));
            var config = KeysValuesAndFc2(initOnes: false);
            config.ModulesToSave = ["classifier"];
            var peft = PeftModel.Inject(model, config);
            using (Autograd.NoGrad()) model.GetParameter("classifier.weight").Mul_(1.5f);
            var x = Input();
            var expected = Run(model, x);
            peft.SavePretrained(dir);

            using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
            {
                CollectionAssert.AreEquivalent(
                    new[] { "base_model.model.layers.0.attn.q_proj.ia3_l", "base_model.model.layers.0.attn.v_proj.ia3_l", "base_model.model.layers.0.mlp.fc2.ia3_l",
                            "base_model.model.layers.1.attn.q_proj.ia3_l", "base_model.model.layers.1.attn.v_proj.ia3_l", "base_model.model.layers.1.mlp.fc2.ia3_l",
                            "base_model.model.classifier.weight", "base_model.model.classifier.bias" },
                    file.Names.ToArray());
                Assert.IsTrue(file.TryGetTensor("base_model.model.layers.1.mlp.fc2.ia3_l", out var view));
                CollectionAssert.AreEqual(new[] { 1, 12 }, view.Shape.ToArray());
            }
            string json = File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName));
            StringAssert.Contains(json, "\"peft_type\": \"IA3\"");
            StringAssert.Contains(json, "\"feedforward_modules\": [\n    \"fc2\"\n  ]");
            StringAssert.Contains(json, "\"init_ia3_weights\": false");

            var reloaded = PeftModel.FromPretrained(new TinyModel(new Generator(8)), dir);
            Assert.IsInstanceOfType<IA3Config>(reloaded.ActiveConfig);
            AssertBitIdentical(expected, Run((TinyModel)reloaded.Model, x), "reloaded");
            Assert.AreEqual(0, reloaded.TrainableParameters().Count(), "loaded frozen by default");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void ConfigJson_ReadsPeftsKeysAndDefaults_AndRejectsBadSettings()
    {
        const string peftJson = """
            {
              "auto_mapping": null,
              "base_model_name_or_path": "bert-base-uncased",
              "fan_in_fan_out": false,
              "feedforward_modules": ["output.dense"],
              "inference_mode": true,
              "init_ia3_weights": true,
              "modules_to_save": null,
              "peft_type": "IA3",
              "revision": null,
              "target_modules": ["key", "value", "output.dense"],
              "task_type": "SEQ_CLS"
            }
            """;
        var config = (IA3Config)PeftConfig.FromJson(peftJson);
        CollectionAssert.AreEqual(new[] { "key", "value", "output.dense" }, config.TargetModules!.Names!.ToArray());
        Assert.IsTrue(config.IsFeedForward("bert.encoder.layer.0.output.dense"));
        Assert.IsTrue(config.IsFeedForward("bert.encoder.layer.0.attention.output.dense"), "PEFT matches feedforward_modules with a plain endswith");
        Assert.IsFalse(config.IsFeedForward("bert.encoder.layer.0.attention.self.key"));
        Assert.IsTrue(config.InitIA3Weights);
        Assert.AreEqual(config.ToJson(), PeftConfig.FromJson(config.ToJson()).ToJson(), "round trip");
        Assert.IsTrue(new IA3Config().InitIA3Weights, "PEFT's default init_ia3_weights = True");

        var e = Assert.ThrowsExactly<PeftConfigException>(() => new IA3Config { TargetModules = new[] { "key" }, FeedForwardModules = new[] { "dense" } }.Validate());
        StringAssert.Contains(e.Message, "subset of target_modules");
        e = Assert.ThrowsExactly<PeftConfigException>(() => new IA3Config { FanInFanOut = true }.Validate());
        StringAssert.Contains(e.Message, "fan_in_fan_out");
    }

    [TestMethod]
    public void NoMatchingTarget_FailsNamingTheLinearLayers_AndLeavesTheModelAlone()
    {
        var model = new TinyModel(new Generator(9), layerCount: 1);
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new IA3Config { TargetModules = new[] { "k_proj" } }));
        StringAssert.Contains(e.Message, "matched no module");
        StringAssert.Contains(e.Message, "layers.0.attn.q_proj, layers.0.attn.v_proj, layers.0.mlp.fc1, layers.0.mlp.fc2, classifier");
        Assert.IsFalse(model.NamedModules().Any(m => m.Module is ITunerLayer));
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new IA3Config()));
        StringAssert.Contains(e.Message, "target_modules is not set");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new IA3Config { TargetModules = new[] { "attn" } }));
        StringAssert.Contains(e.Message, "is a Attention");
    }

    [TestMethod]
    public void AllLinear_SkipsTheOutputHead_AndForSeqClsTheClassifier()
    {
        var lm = PeftModel.Inject(new TinyModel(new Generator(10), layerCount: 1, lmHead: true), new IA3Config { TargetModules = ModuleSelector.AllLinear });
        CollectionAssert.AreEqual(new[] { "layers.0.attn.q_proj", "layers.0.attn.v_proj", "layers.0.mlp.fc1", "layers.0.mlp.fc2", "classifier" }, lm.TargetedModuleNames().ToArray());
        var cls = PeftModel.Inject(new TinyModel(new Generator(10), layerCount: 1), new IA3Config { TargetModules = ModuleSelector.AllLinear, TaskType = "SEQ_CLS" });
        CollectionAssert.AreEqual(new[] { "layers.0.attn.q_proj", "layers.0.attn.v_proj", "layers.0.mlp.fc1", "layers.0.mlp.fc2" }, cls.TargetedModuleNames().ToArray());
        Assert.IsTrue(cls.TrainableParameters().Any(p => p.Name == "classifier.weight"), "SEQ_CLS trains the head as modules_to_save");
    }
}
