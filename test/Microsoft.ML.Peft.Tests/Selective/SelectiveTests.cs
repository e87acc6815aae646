using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Selective;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Selective;

[TestClass]
public sealed class SelectiveTests
{
    private const long BaseParameters = 158;

    private static readonly string[] LayerParameterSuffixes =
        ["input_layernorm.weight", "input_layernorm.bias", "attn.q_proj.weight", "attn.q_proj.bias", "mlp.fc.weight", "mlp.fc.bias"];

    private static IEnumerable<string> LayerParameters(params int[] layers) =>
        layers.SelectMany(i => LayerParameterSuffixes.Select(s => $"model.layers.{i}.{s}"));

    /// <summary>Each method with the parameter names its definition selects in <see cref="NormModel"/>, and PEFT's summary line.</summary>
    private static IEnumerable<(SelectiveConfig Config, string[] Expected, string Summary)> Cases()
    {
        string[] layers = ["model.layers.0", "model.layers.1", "model.layers.2"];
        yield return (SelectiveConfig.BitFit(),
            layers.SelectMany(l => new[] { l + ".input_layernorm.bias", l + ".attn.q_proj.bias", l + ".mlp.fc.bias" }).Append("classifier.bias").ToArray(),
            "trainable params: 38 || all params: 158 || trainable%: 24.0506");
        yield return (SelectiveConfig.LayerNormTuning(),
            layers.SelectMany(l => new[] { l + ".input_layernorm.weight", l + ".input_layernorm.bias" }).Append("model.norm.weight").ToArray(),
            "trainable params: 28 || all params: 158 || trainable%: 17.7215");
        yield return (SelectiveConfig.HeadOnly("classifier"), ["classifier.weight", "classifier.bias"],
            "trainable params: 10 || all params: 168 || trainable%: 5.9524");
        yield return (SelectiveConfig.LastLayers(1, "layers"), LayerParameters(2).ToArray(),
            "trainable params: 48 || all params: 158 || trainable%: 30.3797");
        yield return (SelectiveConfig.LastLayers(2), LayerParameters(1, 2).ToArray(),
            "trainable params: 96 || all params: 158 || trainable%: 60.7595");
        yield return (new SelectiveConfig(SelectiveMethod.LastLayers) { LayersToTransform = [0, 2] }, LayerParameters(0, 2).ToArray(),
            "trainable params: 96 || all params: 158 || trainable%: 60.7595");
        yield return (SelectiveConfig.Full(), new NormModel(new Generator(0)).NamedParameters().Select(p => p.Name).ToArray(),
            "trainable params: 158 || all params: 158 || trainable%: 100.0000");
    }

    private static Tensor Run(NormModel model, Tensor x)
    {
        using (Autograd.NoGrad()) return model.Forward(x);
    }

    private static Tensor Input() => Tensor.Randn(new Generator(11), 2, 3, NormModel.Dim);

    [TestMethod]
    public void EachMethod_TrainsExactlyItsSubset_CountsAsPeft_AndLeavesTheOutputUnchanged()
    {
        foreach (var (config, expected, summary) in Cases())
        {
            var model = new NormModel(new Generator(1));
            var x = Input();
            var before = Run(model, x);
            var peft = PeftModel.Inject(model, config);
            CollectionAssert.AreEquivalent(expected, peft.TrainableParameters().Select(p => p.Name).ToArray(), config.PeftType);
            Assert.AreEqual(summary, peft.TrainableParametersSummary(), config.PeftType);
            var writer = new StringWriter();
            peft.PrintTrainableParameters(writer);
            Assert.AreEqual(summary + Environment.NewLine, writer.ToString());
            AssertBitIdentical(before, Run(model, x), $"{config.PeftType} at init");
        }
    }

    [TestMethod]
    public void Gradients_ReachOnlyTheSelectedParameters()
    {
        foreach (var (config, expected, _) in Cases())
        {
            var model = new NormModel(new Generator(2));
            PeftModel.Inject(model, config);
            model.Forward(Input()).Sum().Backward();
            foreach (var (name, p) in model.NamedParameters())
            {
                bool selected = expected.Contains(name);
                Assert.AreEqual(selected, p.Grad is not null, $"{config.PeftType}: gradient of {name}");
                if (selected) Assert.IsTrue(p.Grad!.ToArray().Any(v => v != 0), $"{config.PeftType}: {name} got an all-zero gradient");
            }
        }
    }

    [TestMethod]
    public void SaveLoad_WritesTheTrainedSubsetUnderBaseModelKeys_AndReproducesOutputsBitForBit()
    {
        foreach (var (config, expected, _) in Cases())
        {
            string dir = Path.Combine(Path.GetTempPath(), "selective-" + Guid.NewGuid().ToString("N"));
            try
            {
                var model = new NormModel(new Generator(3));
                var peft = PeftModel.Inject(model, config);
                // Stand-in for training: move every trainable tensor.
                using (Autograd.NoGrad())
                {
                    foreach (var (_, p) in peft.TrainableParameters()) p.Mul_(1.25f).Add_(Tensor.Full(0.125f, p.ShapeArray()));
                }
                var x = Input();
                var trained = Run(model, x);
                peft.SavePretrained(dir);

                using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
                    CollectionAssert.AreEquivalent(expected.Select(n => PeftModel.KeyPrefix + n).ToArray(), file.Names.ToArray(), config.PeftType);
                StringAssert.Contains(File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName)), $"\"peft_type\": \"{config.PeftType}\"");

                var fresh = new NormModel(new Generator(3));
                Assert.IsTrue(MaxAbsDiff(trained, Run(fresh, x)) > 1e-4, $"{config.PeftType}: training changed the output");
                var reloaded = PeftModel.FromPretrained(fresh, dir);
                Assert.AreEqual(((SelectiveConfig)peft.ActiveConfig).Method, ((SelectiveConfig)reloaded.ActiveConfig).Method);
                AssertBitIdentical(trained, Run(fresh, x), $"{config.PeftType} reloaded");
                Assert.AreEqual(0, reloaded.TrainableParameters().Count(), "loaded frozen");
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
        }
    }

    [TestMethod]
    public void ConfigJson_RoundTripsEachPeftType()
    {
        foreach (var (config, _, _) in Cases())
        {
            string json = config.ToJson();
            var parsed = (SelectiveConfig)PeftConfig.FromJson(json);
            Assert.AreEqual(config.Method, parsed.Method);
            Assert.AreEqual(json, parsed.ToJson());
        }
        var last = (SelectiveConfig)PeftConfig.FromJson("""{"peft_type": "LAST_N_LAYERS", "num_trainable_layers": 2, "layers_pattern": "h"}""");
        Assert.AreEqual(2, last.NumTrainableLayers);
        CollectionAssert.AreEqual(new[] { "h" }, last.LayersPattern!.ToArray());
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "LAST_N_LAYERS"}""", "x.json"));
        StringAssert.Contains(e.Message, "x.json: LAST_N_LAYERS needs num_trainable_layers");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "MULTITASK_PROMPT_TUNING"}""", "y.json"));
        StringAssert.Contains(e.Message, "BITFIT");
    }

    [TestMethod]
    public void MethodsThatCannotApply_FailWithTheReasonAndTheModulesPresent()
    {
        var tiny = new TinyModel(new Generator(4), layerCount: 1);
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(tiny, SelectiveConfig.LayerNormTuning()));
        StringAssert.Contains(e.Message, "LAYERNORM_TUNING selects no parameter of the model: it has no LayerNorm or RMSNorm modules");
        StringAssert.Contains(e.Message, "layers.0.attn.q_proj (Linear)");

        var noBias = new NormModel(new Generator(5));
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(noBias, SelectiveConfig.LastLayers(1, "blocks")));
        StringAssert.Contains(e.Message, "no parameter name carries a layer index (layers_pattern [blocks])");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(noBias, SelectiveConfig.LastLayers(4)));
        StringAssert.Contains(e.Message, "num_trainable_layers is 4 but the model has only 3 layers");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(noBias, SelectiveConfig.HeadOnly("score")));
        StringAssert.Contains(e.Message, "matched no module of the model. Top-level modules: model, classifier");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(noBias, new SelectiveConfig(SelectiveMethod.HeadOnly)));
        StringAssert.Contains(e.Message, "HEAD_ONLY trains modules_to_save only");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(noBias, SelectiveConfig.LayerNormTuning(new[] { "post_attention_layernorm" })));
        StringAssert.Contains(e.Message, "target_modules [post_attention_layernorm] matched no module");

        var biasFree = new BiasFree(new Generator(6));
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(biasFree, SelectiveConfig.BitFit()));
        StringAssert.Contains(e.Message, "it has no bias parameters; modules in the model: proj (Linear)");
        Assert.IsTrue(biasFree.Parameters().All(p => p.RequiresGrad), "a failed injection leaves the model untouched");
    }

    [TestMethod]
    public void BitFitWithAHead_TrainsTheHeadThroughModulesToSave()
    {
        var model = new NormModel(new Generator(7));
        var config = SelectiveConfig.BitFit();
        config.ModulesToSave = ["classifier"];
        var peft = PeftModel.Inject(model, config);
        // 36 body biases + the classifier copy (10); PEFT also counts the original classifier (10).
        Assert.AreEqual((46L, BaseParameters + 10), peft.GetNumberOfTrainableParameters());
        Assert.AreEqual(9 + 2, peft.GetAdapterStateDict().Count, "9 bias tensors (36 values) + classifier weight and bias: " + string.Join(", ", peft.GetAdapterStateDict().Keys));
    }

    [TestMethod]
    public void DisableAdapters_IsRefusedWhereTheBaseIsTrainedInPlace_AndWorksForHeadOnly()
    {
        var model = new NormModel(new Generator(8));
        var peft = PeftModel.Inject(model, SelectiveConfig.BitFit());
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => peft.DisableAdapters());
        StringAssert.Contains(e.Message, "BITFIT trains the base model's own parameters in place");

        var headModel = new NormModel(new Generator(9));
        var x = Input();
        var before = Run(headModel, x);
        var head = PeftModel.Inject(headModel, SelectiveConfig.HeadOnly("classifier"));
        using (Autograd.NoGrad()) headModel.GetParameter("classifier.weight").Mul_(2f);
        Assert.IsTrue(MaxAbsDiff(before, Run(headModel, x)) > 1e-4);
        using (head.DisableAdapters()) AssertBitIdentical(before, Run(headModel, x), "head-only disabled");
    }

    private sealed class BiasFree : Module
    {
        public BiasFree(Generator g) => RegisterModule<LinearLayer>("proj", new Linear(3, 3, g, hasBias: false));
    }
}
