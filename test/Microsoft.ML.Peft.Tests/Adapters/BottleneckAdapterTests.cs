using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Adapters;

[TestClass]
public sealed class BottleneckAdapterTests
{
    // TinyModel (LoraTestSupport): d 8, mlp 12, 3 classes, 2 layers, 723 base parameters.
    private const long BaseParameters = 723;

    private static BottleneckAdapterConfig Serial(int b = 4, bool init = true, double sparsity = 0, string act = "relu") => new()
    {
        TargetModules = new[] { "v_proj", "fc2" }, BottleneckSize = b, InitAdapterWeights = init, Sparsity = sparsity, NonLinearity = act,
    };

    private static BottleneckAdapterConfig Parallel(bool init = true, double scaling = 4) => new()
    {
        Placement = AdapterPlacement.Parallel, TargetModules = new[] { "fc2" }, ParallelInputModules = new[] { "fc1" }, BottleneckSize = 4,
        InitAdapterWeights = init, Scaling = scaling,
    };

    private static Tensor Run(TinyModel model, Tensor x)
    {
        using (Autograd.NoGrad()) return model.Forward(x);
    }

    [TestMethod]
    public void TrainableCount_IsTheBottleneckFormula()
    {
        // Per adapted layer of width d with bottleneck b: down b·d + b, up d·b + d.
        static long PerLayer(long d, long b) => (b * d + b) + (d * b + d);
        var serial = PeftModel.Inject(new TinyModel(new Generator(1)), Serial());
        Assert.AreEqual((4 * PerLayer(8, 4), BaseParameters + 4 * PerLayer(8, 4)), serial.GetNumberOfTrainableParameters());
        var parallel = PeftModel.Inject(new TinyModel(new Generator(1)), Parallel());
        Assert.AreEqual((2 * PerLayer(8, 4), BaseParameters + 2 * PerLayer(8, 4)), parallel.GetNumberOfTrainableParameters());
        CollectionAssert.AreEquivalent(
            new[] { "layers.0.mlp.fc2.adapter_down.default.weight", "layers.0.mlp.fc2.adapter_down.default.bias", "layers.0.mlp.fc2.adapter_up.default.weight", "layers.0.mlp.fc2.adapter_up.default.bias",
                    "layers.1.mlp.fc2.adapter_down.default.weight", "layers.1.mlp.fc2.adapter_down.default.bias", "layers.1.mlp.fc2.adapter_up.default.weight", "layers.1.mlp.fc2.adapter_up.default.bias" },
            parallel.TrainableParameters().Select(p => p.Name).ToArray());
        // A sparse adapter has the same tensors (pruned entries are masked, not removed).
        Assert.AreEqual(4 * PerLayer(8, 4), PeftModel.Inject(new TinyModel(new Generator(1)), Serial(sparsity: 0.5)).GetNumberOfTrainableParameters().Trainable);
    }

    [TestMethod]
    public void AtInit_SerialParallelAndSparseAdapters_LeaveTheModelBitIdentical()
    {
        foreach (var config in new[] { Serial(), Parallel(), Serial(sparsity: 0.75, act: "gelu") })
        {
            var model = new TinyModel(new Generator(2));
            var x = Input();
            var before = Run(model, x);
            var peft = PeftModel.Inject(model, config);
            AssertBitIdentical(before, Run(model, x), config.ToString());
            foreach (var (_, layer) in peft.TunerLayers().Where(t => t.Layer is BottleneckAdapterLinear))
                Assert.IsTrue(((BottleneckAdapterLinear)layer).Up("default").Weight.ToArray().All(v => v == 0f), "up-projection starts at zero");
        }
    }

    [TestMethod]
    public void SerialForward_IsYPlusScaledUpOfActivatedDown_ComputedByHand()
    {
        var g = new Generator(3);
        var x = Tensor.Randn(g, 2, 3, 5);
        var linear = new Linear(5, 6, g);
        var layer = new BottleneckAdapterLinear(linear, "proj");
        var config = new BottleneckAdapterConfig { BottleneckSize = 3, InitAdapterWeights = false, Scaling = 2.5, NonLinearity = "relu" };
        layer.AddAdapter("default", config, null, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        Tensor y, baseY;
        using (Autograd.NoGrad())
        {
            y = layer.Forward(x);
            baseY = linear.Forward(x);
        }
        float[] dw = layer.Down("default").Weight.ToArray(), db = layer.Down("default").Bias!.ToArray();
        float[] uw = layer.Up("default").Weight.ToArray(), ub = layer.Up("default").Bias!.ToArray();
        float[] ys = y.ToArray(), bs = baseY.ToArray();
        for (int row = 0; row < 6; row++)
        {
            var h = new double[3];
            for (int j = 0; j < 3; j++)
            {
                double sum = db[j];
                for (int k = 0; k < 6; k++) sum += (double)dw[j * 6 + k] * bs[row * 6 + k];
                h[j] = Math.Max(0, sum);
            }
            for (int o = 0; o < 6; o++)
            {
                double a = ub[o];
                for (int j = 0; j < 3; j++) a += uw[o * 3 + j] * h[j];
                Assert.AreEqual(bs[row * 6 + o] + 2.5 * a, ys[row * 6 + o], 1e-5, $"row {row}, out {o}");
            }
        }
    }

    [TestMethod]
    public void ParallelForward_AddsTheAdapterOfTheBlockInputToTheFeedForwardOutput()
    {
        var model = new TinyModel(new Generator(4), layerCount: 1);
        var peft = PeftModel.Inject(model, Parallel(init: false, scaling: 4));
        var x = Input();
        var fc2 = (BottleneckAdapterLinear)model.GetModule("layers.0.mlp.fc2");
        var fc1 = (AdapterInputTap)model.GetModule("layers.0.mlp.fc1");
        var q = model.GetModule("layers.0.attn.q_proj") as LinearLayer;
        var v = model.GetModule("layers.0.attn.v_proj") as LinearLayer;
        var classifier = (Linear)model.GetModule("classifier");
        Tensor expected;
        using (Autograd.NoGrad())
        {
            // The block by hand: h = x + q(x)⊙v(x); out = h + fc2(relu(fc1(h))) + 4·up(relu(down(h))).
            var h = x.Add(q!.Forward(x).Mul(v!.Forward(x)));
            var ffn = fc2.Base.Forward(fc1.Base.Forward(h).Relu());
            var adapter = fc2.Up("default").Forward(fc2.Down("default").Forward(h).Relu()).Mul(4f);
            expected = classifier.Forward(h.Add(ffn).Add(adapter));
        }
        AssertClose(expected, Run(model, x), 1e-6, 1e-6, "parallel adapter");
        Assert.IsTrue(MaxAbsDiff(expected, Run(model, x)) < 1e-6);
        using (peft.DisableAdapters())
        {
            Tensor plain;
            using (Autograd.NoGrad())
            {
                var h = x.Add(q!.Forward(x).Mul(v!.Forward(x)));
                plain = classifier.Forward(h.Add(fc2.Base.Forward(fc1.Base.Forward(h).Relu())));
            }
            AssertBitIdentical(plain, Run(model, x), "disabled");
        }
    }

    [TestMethod]
    public void TwoActiveParallelAdapters_ShareTheTappedInput_AndAddUp()
    {
        var model = new TinyModel(new Generator(14), layerCount: 1);
        var peft = PeftModel.Inject(model, Parallel(init: false));
        peft.AddAdapter("second", Parallel(init: false, scaling: 0.5));
        peft.SetAdapters(["default", "second"]);
        var x = Input();
        var fc2 = (BottleneckAdapterLinear)model.GetModule("layers.0.mlp.fc2");
        var fc1 = (AdapterInputTap)model.GetModule("layers.0.mlp.fc1");
        var q = (LinearLayer)model.GetModule("layers.0.attn.q_proj");
        var v = (LinearLayer)model.GetModule("layers.0.attn.v_proj");
        Tensor expected;
        using (Autograd.NoGrad())
        {
            var h = x.Add(q.Forward(x).Mul(v.Forward(x)));
            var first = fc2.Up("default").Forward(fc2.Down("default").Forward(h).Relu()).Mul(4f);
            var second = fc2.Up("second").Forward(fc2.Down("second").Forward(h).Relu()).Mul(0.5f);
            var ffn = fc2.Base.Forward(fc1.Base.Forward(h).Relu()).Add(first).Add(second);
            expected = ((Linear)model.GetModule("classifier")).Forward(h.Add(ffn));
        }
        AssertClose(expected, Run(model, x), 1e-6, 1e-6, "two parallel adapters");
        CollectionAssert.AreEquivalent(new[] { "default", "second" }, fc1.AdapterNames.ToArray());
    }

    [TestMethod]
    public void Gradients_FlowOnlyIntoAdapters_AndMatchFiniteDifferences()
    {
        foreach (var config in new[] { Serial(init: false), Parallel(init: false) })
        {
            var model = new TinyModel(new Generator(5));
            _ = PeftModel.Inject(model, config);
            model.Forward(Input()).Sum().Backward();
            foreach (var (name, p) in model.NamedParameters())
            {
                bool adapter = name.Contains(".adapter_", StringComparison.Ordinal);
                Assert.AreEqual(adapter, p.RequiresGrad, name);
                Assert.AreEqual(adapter, p.Grad is not null, $"gradient of {name}");
            }
        }

        var g = new Generator(6);
        var x = Tensor.Randn(g, 4, 5).RequiresGrad_();
        var layer = new BottleneckAdapterLinear(new Linear(5, 6, g), "proj");
        layer.AddAdapter("default", new BottleneckAdapterConfig { BottleneckSize = 3, InitAdapterWeights = false, Scaling = 1.5, NonLinearity = "silu", Sparsity = 0.25 }, null, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        Linear d = layer.Down("default"), u = layer.Up("default");
        GradCheck.Check(_ => layer.Forward(x), [x, d.Weight, d.Bias!, u.Weight, u.Bias!]);
        var masks = layer.Masks("default")!.Value;
        var dGrad = d.Weight.Grad!.ToArray();
        var dMask = masks.Down.ToArray();
        for (int i = 0; i < dGrad.Length; i++)
        {
            if (dMask[i] == 0) Assert.AreEqual(0f, dGrad[i], $"pruned down[{i}] gets no gradient");
        }
    }

    [TestMethod]
    public void SparseAdapter_PrunesByMagnitude_AndPrunedWeightsStayExactlyZeroThroughAdamW()
    {
        var g = new Generator(7);
        var w = Tensor.Randn(g, 6, 10);
        var original = w.ToArray();
        var mask = MagnitudePruning.Prune(w, 0.7, new Generator(8)).ToArray();
        Assert.AreEqual(42, mask.Count(m => m == 0f), "⌊0.7 · 60⌋ pruned");
        double largestPruned = Enumerable.Range(0, 60).Where(i => mask[i] == 0).Max(i => Math.Abs(original[i]));
        double smallestKept = Enumerable.Range(0, 60).Where(i => mask[i] == 1).Min(i => Math.Abs(original[i]));
        Assert.IsTrue(smallestKept >= largestPruned, $"kept {smallestKept} vs pruned {largestPruned}");
        var pruned = w.ToArray();
        for (int i = 0; i < 60; i++) Assert.AreEqual(mask[i] == 0 ? 0f : original[i], pruned[i]);

        var model = new TinyModel(new Generator(9));
        var peft = PeftModel.Inject(model, Serial(sparsity: 0.5));
        var layer = (BottleneckAdapterLinear)model.GetModule("layers.1.mlp.fc2");
        var optimizer = new AdamW(peft.TrainableParameters().Select(p => p.Parameter), learningRate: 1e-2, weightDecay: 0.1);
        var targets = Tensor.FromInt32([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 2, 5);
        for (int step = 0; step < 5; step++)
        {
            using var scope = TensorScope.Begin();
            model.Forward(Input()).Reshape(10, 3).CrossEntropy(targets.Reshape(10)).Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        var (downMask, upMask) = layer.Masks("default")!.Value;
        foreach (var (weight, m, what) in new[] { (layer.Down("default").Weight, downMask, "down"), (layer.Up("default").Weight, upMask, "up") })
        {
            var values = weight.ToArray();
            var maskValues = m.ToArray();
            Assert.AreEqual(16, maskValues.Count(v => v == 0f), $"{what}: half of 32 pruned");
            for (int i = 0; i < values.Length; i++)
            {
                if (maskValues[i] == 0f) Assert.AreEqual(0f, values[i], $"{what}[{i}] pruned");
            }
            Assert.IsTrue(values.Count(v => v != 0f) >= 8, $"{what}: kept weights train ({values.Count(v => v != 0f)} non-zero)");
        }
    }

    [TestMethod]
    public void SaveLoad_ReproducesOutputsBitForBit_WithMasksAndTaps()
    {
        foreach (var config in new[] { Serial(init: false, sparsity: 0.5), Parallel(init: false) })
        {
            string dir = Path.Combine(Path.GetTempPath(), "bottleneck-" + Guid.NewGuid().ToString("N"));
            try
            {
                var model = new TinyModel(new Generator(10));
                config.ModulesToSave = ["classifier"];
                var peft = PeftModel.Inject(model, config, generator: new Generator(11));
                var x = Input();
                var expected = Run(model, x);
                peft.SavePretrained(dir);
                using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
                {
                    Assert.IsTrue(file.Contains("base_model.model.layers.1.mlp.fc2.adapter_down.weight"));
                    Assert.IsTrue(file.Contains("base_model.model.layers.1.mlp.fc2.adapter_up.bias"));
                    Assert.AreEqual(config.Sparsity > 0, file.Contains("base_model.model.layers.1.mlp.fc2.adapter_up.mask"));
                }
                StringAssert.Contains(File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName)), "\"peft_type\": \"BOTTLENECK_ADAPTER\"");
                // A different generator: every adapter value (and each sparse mask) must come from the file.
                var reloaded = PeftModel.FromPretrained(new TinyModel(new Generator(10)), dir, generator: new Generator(99));
                var loadedConfig = (BottleneckAdapterConfig)reloaded.ActiveConfig;
                Assert.AreEqual(config.Placement, loadedConfig.Placement);
                Assert.AreEqual(config.Sparsity, loadedConfig.Sparsity);
                AssertBitIdentical(expected, Run((TinyModel)reloaded.Model, x), config.ToString());
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
        }
    }

    [TestMethod]
    public void Merge_IsRefusedWithTheReason_AndUnloadGivesTheBaseModelBack()
    {
        var model = new TinyModel(new Generator(12));
        var x = Input();
        var before = Run(model, x);
        var peft = PeftModel.Inject(model, Parallel(init: false));
        var e = Assert.ThrowsExactly<NotSupportedException>(() => peft.MergeAdapter());
        StringAssert.Contains(e.Message, "non-linear");
        var unloaded = peft.Unload();
        Assert.IsFalse(unloaded.NamedModules().Any(m => m.Module is ITunerLayer));
        AssertBitIdentical(before, Run(model, x), "unloaded");
    }

    [TestMethod]
    public void BadInput_NamesTheModelsLinearLayers_AndTheBrokenPairing()
    {
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(new TinyModel(new Generator(13)), new BottleneckAdapterConfig { TargetModules = new[] { "down_proj" } }));
        StringAssert.Contains(e.Message, "matched no module");
        StringAssert.Contains(e.Message, "layers.0.attn.q_proj, layers.0.attn.v_proj, layers.0.mlp.fc1, layers.0.mlp.fc2");
        var model = new TinyModel(new Generator(13));
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new BottleneckAdapterConfig
        {
            Placement = AdapterPlacement.Parallel, TargetModules = new[] { "fc2" }, ParallelInputModules = new[] { "q_proj", "fc1" },
        }));
        StringAssert.Contains(e.Message, "exactly one parallel_input_modules layer");
        Assert.IsFalse(model.NamedModules().Any(m => m.Module is ITunerLayer), "nothing was wrapped");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new BottleneckAdapterConfig { Placement = AdapterPlacement.Parallel, TargetModules = new[] { "fc2" } }));
        StringAssert.Contains(e.Message, "parallel_input_modules");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "BOTTLENECK_ADAPTER", "target_modules": ["fc2"], "sparsity": 1.0}""", "cfg.json"));
        StringAssert.StartsWith(e.Message, "cfg.json: sparsity");
    }

    [TestMethod]
    public void Json_RoundTripsEveryField()
    {
        var config = Parallel();
        config.NonLinearity = "gelu_new";
        config.Sparsity = 0.25;
        var parsed = (BottleneckAdapterConfig)PeftConfig.FromJson(config.ToJson());
        Assert.AreEqual(config.ToJson(), parsed.ToJson());
        Assert.AreEqual(AdapterPlacement.Parallel, parsed.Placement);
        Assert.AreEqual(4.0, parsed.Scaling);
        Assert.AreEqual("gelu_new", parsed.NonLinearity);
        Assert.AreEqual(ModuleSelector.FromNames("fc1"), parsed.ParallelInputModules);
    }

    [TestMethod]
    public void Stories260KSst2_SerialParallelAndSparseAdapters_LowerTheLoss()
    {
        var defaults = BottleneckAdapterConfig.DefaultModules("llama")!.Value;
        var configs = new BottleneckAdapterConfig[]
        {
            new() { TargetModules = defaults.Serial, BottleneckSize = 8, TaskType = "SEQ_CLS" },
            new() { Placement = AdapterPlacement.Parallel, TargetModules = defaults.ParallelTargets, ParallelInputModules = defaults.ParallelInputs, BottleneckSize = 8, Scaling = 4, TaskType = "SEQ_CLS" },
            new() { TargetModules = defaults.Serial, BottleneckSize = 8, Sparsity = 0.5, TaskType = "SEQ_CLS" },
        };
        foreach (var config in configs)
        {
            var model = Sst2Stories.LoadModel();
            var peft = PeftModel.Inject(model, config);
            Assert.AreEqual(config.Placement == AdapterPlacement.Serial ? 10 : 5, peft.TargetedModuleNames().Count, "5 stories260K layers");
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (before, after) = Sst2Stories.Train(model, peft, Sst2Stories.Steps, Sst2Stories.LearningRate);
            clock.Stop();
            Console.WriteLine($"{config}: loss {before:F4} → {after:F4} (head only: {Sst2Stories.HeadOnlyLoss:F4}); {Sst2Stories.Steps} steps + 2 evaluations in {clock.ElapsedMilliseconds} ms");
            Assert.IsTrue(after < before - 0.02, $"{config}: loss {before} → {after}");
            Assert.IsTrue(after < Sst2Stories.HeadOnlyLoss, $"{config}: {after} does not beat the head-only baseline {Sst2Stories.HeadOnlyLoss}");
        }
    }
}
