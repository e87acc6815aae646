using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Selective;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Adapters;

/// <summary>
/// The default placements of <see cref="BottleneckAdapterConfig.DefaultModules"/> on every supported architecture's
/// tiny reference checkpoint: serial adapters after attention and after the feed-forward block (two per layer),
/// parallel adapters paired with the feed-forward input of the same layer, identity at init, the base model back when
/// disabled; and FaR / PaFi / diff pruning on GPT-2's Conv1D layers merge within 1e-5.
/// </summary>
[TestClass]
public sealed class ArchitectureDefaultsTests
{
    private static (SequenceClassificationModel Model, Tensor Ids, Tensor Mask, Tensor? Types) Load(string arch)
    {
        bool encoder = arch is "bert" or "roberta" or "distilbert";
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Fixture("reference", "models", arch, encoder ? "" : "sequence_classification"));
        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        var types = fx.Has("right_padding.token_type_ids") ? fx.Int("right_padding.token_type_ids") : null;
        return (model, fx.Int("right_padding.input_ids"), fx.Int("right_padding.attention_mask"), types);
    }

    private static Tensor Logits(SequenceClassificationModel model, Tensor ids, Tensor mask, Tensor? types)
    {
        model.Eval();
        using (Autograd.NoGrad()) return model.Forward(ids, mask, types);
    }

    [TestMethod]
    [DataRow("bert")]
    [DataRow("roberta")]
    [DataRow("distilbert")]
    [DataRow("gpt2")]
    [DataRow("gpt_neox")]
    [DataRow("llama_gqa")]
    [DataRow("qwen2")]
    public void DefaultPlacements_WrapTwoSerialAndOneParallelPerLayer_IdentityAtInit(string arch)
    {
        var (model, ids, mask, types) = Load(arch);
        var defaults = BottleneckAdapterConfig.DefaultModules(model.Config.ModelType)
            ?? throw new AssertFailedException($"no defaults for model_type {model.Config.ModelType}");
        var before = Logits(model, ids, mask, types);

        var serial = PeftModel.Inject(model, new BottleneckAdapterConfig { TargetModules = defaults.Serial, BottleneckSize = 4 });
        AssertBitIdentical(before, Logits(model, ids, mask, types), $"{arch} serial at init");
        int serialCount = serial.TargetedModuleNames().Count;
        serial.Unload();

        var parallel = PeftModel.Inject(model, new BottleneckAdapterConfig
        {
            Placement = AdapterPlacement.Parallel, TargetModules = defaults.ParallelTargets, ParallelInputModules = defaults.ParallelInputs,
            BottleneckSize = 4, InitAdapterWeights = false, Scaling = 4,
        });
        int layers = parallel.TargetedModuleNames().Count;
        Assert.AreEqual(2 * layers, serialCount, $"{arch}: after attention and after the feed-forward block in each of {layers} layers");
        Assert.AreEqual(layers, parallel.TunerLayers().Count(t => t.Layer is AdapterInputTap), $"{arch}: one feed-forward input tap per layer");
        Assert.IsTrue(MaxAbsDiff(before, Logits(model, ids, mask, types)) > 1e-4, $"{arch}: random parallel adapters change the logits");
        using (parallel.DisableAdapters()) AssertBitIdentical(before, Logits(model, ids, mask, types), $"{arch} parallel disabled");
    }

    [TestMethod]
    public void WeightDeltas_OnGpt2Conv1D_MergeWithin1e5()
    {
        foreach (var config in new PeftConfig[]
        {
            new FarConfig { TargetModules = new[] { "c_fc" }, Split = FarSplit.Columns },
            new FarConfig { TargetModules = new[] { "c_attn" } },
            new PafiConfig { TargetModules = new[] { "c_attn", "c_proj" }, TrainableFraction = 0.05 },
            new DiffPruningConfig { TargetModules = new[] { "c_fc" }, KeepFraction = 0.1 },
        })
        {
            var (model, ids, mask, types) = Load("gpt2");
            var peft = PeftModel.Inject(model, config);
            var g = new Generator(3);
            using (Autograd.NoGrad())
            {
                foreach (var (name, p) in peft.TrainableParameters().Where(p => p.Name.Contains(".delta.", StringComparison.Ordinal)))
                    p.CopyFrom_(Tensor.Randn(g, p.ShapeArray()).Mul(name.EndsWith(".log_alpha", StringComparison.Ordinal) ? 2f : 0.05f));
            }
            foreach (var (_, layer) in peft.TunerLayers()) ((WeightDeltaLinear)layer).Delta("default").FinalizeDelta();
            var unmerged = Logits(model, ids, mask, types);
            peft.MergeAndUnload();
            double diff = MaxAbsDiff(unmerged, Logits(model, ids, mask, types));
            Assert.IsTrue(diff <= 1e-5, $"{config.PeftType}: merged vs unmerged {diff}");
        }
    }
}
