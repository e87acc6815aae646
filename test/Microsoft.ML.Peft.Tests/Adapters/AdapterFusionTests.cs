using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Adapters;

[TestClass]
public sealed class AdapterFusionTests
{
    private static Tensor Run(TinyModel model, Tensor x)
    {
        using (Autograd.NoGrad()) return model.Forward(x);
    }

    /// <summary>Two different trained-looking serial adapters on fc2, saved to folders.</summary>
    private static string[] SaveTwoAdapters(string root)
    {
        var folders = new[] { Path.Combine(root, "a"), Path.Combine(root, "b") };
        for (int i = 0; i < 2; i++)
        {
            var peft = PeftModel.Inject(new TinyModel(new Generator(1)), new BottleneckAdapterConfig
            {
                TargetModules = new[] { "fc2" }, BottleneckSize = 3, InitAdapterWeights = false, NonLinearity = "silu", Sparsity = i * 0.5,
            }, generator: new Generator((ulong)(20 + i)));
            peft.SavePretrained(folders[i]);
        }
        return folders;
    }

    [TestMethod]
    public void Fusion_TrainsOnlyQueryKeyValue_AndMixesTheAdaptersOutputsAsTheFormula()
    {
        string root = Path.Combine(Path.GetTempPath(), "fusion-" + Guid.NewGuid().ToString("N"));
        try
        {
            var folders = SaveTwoAdapters(root);
            var model = new TinyModel(new Generator(1), layerCount: 1);
            var peft = PeftModel.Inject(model, new AdapterFusionConfig { AdapterPaths = folders });
            // query (d² + d) + key (d² + d) + value d² with d = 8, one adapted layer.
            Assert.AreEqual(2 * (64 + 8) + 64, peft.GetNumberOfTrainableParameters().Trainable);
            CollectionAssert.AreEquivalent(
                new[] { "layers.0.mlp.fc2.adapter_fusion.default.query.weight", "layers.0.mlp.fc2.adapter_fusion.default.query.bias", "layers.0.mlp.fc2.adapter_fusion.default.key.weight",
                        "layers.0.mlp.fc2.adapter_fusion.default.key.bias", "layers.0.mlp.fc2.adapter_fusion.default.value.weight" },
                peft.TrainableParameters().Select(p => p.Name).ToArray());

            // By hand on the layer: h = fc2 output; z_n = h + adapter_n(h); p = softmax(q·k_n); out = Σ p_n V z_n.
            var layer = (BottleneckAdapterLinear)model.GetModule("layers.0.mlp.fc2");
            var fusion = layer.Fusion("default");
            CollectionAssert.AreEqual(new[] { "default_0", "default_1" }, fusion.Fused.ToArray());
            var x = Tensor.Randn(new Generator(3), 4, 12);
            using (Autograd.NoGrad())
            {
                var h = layer.Base.Forward(x);
                var z = fusion.Fused.Select(n => h.Add(layer.Bottleneck(n, h))).ToArray();
                float[] hs = h.ToArray(), qw = fusion.Query.Weight.ToArray(), kw = fusion.Key.Weight.ToArray(), vw = fusion.Value.Weight.ToArray();
                float[][] zs = z.Select(t => t.ToArray()).ToArray();
                var y = layer.Forward(x).ToArray();
                for (int row = 0; row < 4; row++)
                {
                    double[] Project(float[] w, float[] v, int offset)
                    {
                        var r = new double[8];
                        for (int o = 0; o < 8; o++)
                        {
                            for (int k = 0; k < 8; k++) r[o] += (double)w[o * 8 + k] * v[offset + k];
                        }
                        return r;
                    }
                    var q = Project(qw, hs, row * 8);
                    var scores = zs.Select(zn => Project(kw, zn, row * 8).Zip(q, (a, b) => a * b).Sum()).ToArray();
                    double max = scores.Max();
                    var p = scores.Select(s => Math.Exp(s - max)).ToArray();
                    double total = p.Sum();
                    for (int o = 0; o < 8; o++)
                    {
                        double expected = 0;
                        for (int n = 0; n < 2; n++) expected += p[n] / total * Project(vw, zs[n], row * 8)[o];
                        Assert.AreEqual(expected, y[row * 8 + o], 1e-5, $"row {row}, out {o}");
                    }
                }
            }

            model.Forward(Input()).Sum().Backward();
            foreach (var (name, p) in model.NamedParameters())
                Assert.AreEqual(name.Contains(".adapter_fusion.", StringComparison.Ordinal), p.Grad is not null, $"gradient of {name}");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void FusionLayer_GradientsMatchFiniteDifferences()
    {
        var g = new Generator(4);
        var fusion = new AdapterFusion(5, ["a", "b", "c"], g);
        // Away from the identity / tiny init so every term is exercised.
        using (Autograd.NoGrad())
        {
            fusion.Query.Weight.CopyFrom_(Tensor.Randn(g, 5, 5).Mul(0.5f));
            fusion.Key.Weight.CopyFrom_(Tensor.Randn(g, 5, 5).Mul(0.5f));
            fusion.Value.Weight.CopyFrom_(Tensor.Randn(g, 5, 5));
            fusion.Query.Bias!.CopyFrom_(Tensor.Randn(g, 5));
        }
        var h = Tensor.Randn(g, 2, 3, 5).RequiresGrad_();
        var z = Enumerable.Range(0, 3).Select(_ => Tensor.Randn(g, 2, 3, 5).RequiresGrad_()).ToArray();
        GradCheck.Check(_ => fusion.Forward(h, z), [h, z[0], z[1], z[2], fusion.Query.Weight, fusion.Query.Bias!, fusion.Key.Weight, fusion.Key.Bias!, fusion.Value.Weight]);
    }

    [TestMethod]
    public void SaveLoad_ReproducesOutputsBitForBit_AndBadPathsAreNamed()
    {
        string root = Path.Combine(Path.GetTempPath(), "fusion-" + Guid.NewGuid().ToString("N"));
        try
        {
            var folders = SaveTwoAdapters(root);
            var model = new TinyModel(new Generator(1));
            var peft = PeftModel.Inject(model, new AdapterFusionConfig { AdapterPaths = folders }, "fused");
            using (Autograd.NoGrad()) ((BottleneckAdapterLinear)model.GetModule("layers.1.mlp.fc2")).Fusion("fused").Key.Weight.Mul_(30f);
            var x = Input();
            var expected = Run(model, x);
            string saved = Path.Combine(root, "fusion");
            peft.SavePretrained(saved);
            using (var file = SafeTensorsFile.Open(Path.Combine(saved, "fused", PeftModel.WeightsFileName)))
            {
                Assert.AreEqual(10, file.Names.Count(), "5 fusion tensors × 2 layers; the fused adapters stay in their own folders");
                Assert.IsTrue(file.Contains("base_model.model.layers.1.mlp.fc2.adapter_fusion.key.weight"));
            }
            var reloaded = PeftModel.FromPretrained(new TinyModel(new Generator(1)), Path.Combine(saved, "fused"), "fused", generator: new Generator(5));
            AssertBitIdentical(expected, Run((TinyModel)reloaded.Model, x), "reloaded fusion");

            var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(new TinyModel(new Generator(1)), new AdapterFusionConfig { AdapterPaths = [folders[0], Path.Combine(root, "missing")] }));
            StringAssert.Contains(e.Message, "missing");
            // A weights file that does not fit (b's tensors under a's folder name): named, and the model is left as it was.
            string broken = Path.Combine(root, "broken");
            Directory.CreateDirectory(broken);
            File.Copy(Path.Combine(folders[0], PeftConfig.ConfigFileName), Path.Combine(broken, PeftConfig.ConfigFileName));
            var other = PeftModel.Inject(new TinyModel(new Generator(1)), new BottleneckAdapterConfig { TargetModules = new[] { "fc2" }, BottleneckSize = 5 });
            other.SavePretrained(Path.Combine(root, "wide"));
            File.Copy(Path.Combine(root, "wide", PeftModel.WeightsFileName), Path.Combine(broken, PeftModel.WeightsFileName));
            var untouched = new TinyModel(new Generator(1));
            e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(untouched, new AdapterFusionConfig { AdapterPaths = [folders[0], broken] }));
            StringAssert.Contains(e.Message, "has shape [5, 8] in the file but [3, 8] in the model");
            Assert.IsFalse(untouched.NamedModules().Any(m => m.Module is ITunerLayer), "the failed fusion took its layers out again");
            AssertBitIdentical(Run(new TinyModel(new Generator(1)), x), Run(untouched, x), "untouched model");
            e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(new TinyModel(new Generator(1)), new AdapterFusionConfig { AdapterPaths = [folders[0]] }));
            StringAssert.Contains(e.Message, "at least two");
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [TestMethod]
    public void Stories260KSst2_FusionOverTwoAdapters_LowersTheLoss()
    {
        string root = Path.Combine(Path.GetTempPath(), "fusion-sst2-" + Guid.NewGuid().ToString("N"));
        try
        {
            // Two serial adapters after o_proj/down_proj: one trained briefly on the task, one left random (a distractor).
            var serial = BottleneckAdapterConfig.DefaultModules("llama")!.Value.Serial;
            var folders = new[] { Path.Combine(root, "trained"), Path.Combine(root, "random") };
            var trainedModel = Sst2Stories.LoadModel();
            var trained = PeftModel.Inject(trainedModel, new BottleneckAdapterConfig { TargetModules = serial, BottleneckSize = 8 });
            _ = Sst2Stories.Train(trainedModel, trained, 3, Sst2Stories.LearningRate);
            trained.SavePretrained(folders[0]);
            PeftModel.Inject(Sst2Stories.LoadModel(), new BottleneckAdapterConfig { TargetModules = serial, BottleneckSize = 8, InitAdapterWeights = false }, generator: new Generator(3))
                .SavePretrained(folders[1]);

            var model = Sst2Stories.LoadModel();
            var peft = PeftModel.Inject(model, new AdapterFusionConfig { AdapterPaths = folders, TaskType = "SEQ_CLS" });
            Assert.AreEqual(10, peft.TargetedModuleNames().Count);
            // Per layer (d = 64): query and key 64² + 64, value 64²; plus the 2 × 64 score head.
            Assert.AreEqual(10L * (2 * (64 * 64 + 64) + 64 * 64) + 128, peft.GetNumberOfTrainableParameters().Trainable);
            var (before, after) = Sst2Stories.Train(model, peft, Sst2Stories.Steps, Sst2Stories.LearningRate);
            Console.WriteLine($"ADAPTER_FUSION: loss {before:F4} → {after:F4} (head only: {Sst2Stories.HeadOnlyLoss:F4})");
            Assert.IsTrue(after < before - 0.02, $"fusion: loss {before} → {after}");
        }
        finally
        {
            if (Directory.Exists(root)) Directory.Delete(root, recursive: true);
        }
    }
}
