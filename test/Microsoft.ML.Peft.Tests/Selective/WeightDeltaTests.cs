using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Selective;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Adapters;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.Selective;

/// <summary>FaR, PaFi and diff pruning: learned weight differences on TinyModel's fc1 [12, 8] and fc2 [8, 12].</summary>
[TestClass]
public sealed class WeightDeltaTests
{
    private const long BaseParameters = 723;

    private static PafiConfig Pafi() => new() { TargetModules = new[] { "fc1", "fc2" }, TrainableFraction = 0.1 };

    private static FarConfig Far() => new() { TargetModules = new[] { "fc1", "fc2" }, TrainableFraction = 0.25 };

    private static DiffPruningConfig Diff() => new() { TargetModules = new[] { "fc1", "fc2" }, KeepFraction = 0.05, L0Penalty = 1e-3 };

    private static IEnumerable<PeftConfig> All() => [Pafi(), Far(), Diff()];

    private static Tensor Run(TinyModel model, Tensor x)
    {
        model.Eval();
        using (Autograd.NoGrad()) return model.Forward(x);
    }

    /// <summary>Random values in every delta parameter (as after training).</summary>
    private static void Randomise(PeftModel peft, ulong seed)
    {
        var g = new Generator(seed);
        using (Autograd.NoGrad())
        {
            foreach (var (name, p) in peft.TrainableParameters())
            {
                if (name.EndsWith(".log_alpha", StringComparison.Ordinal)) p.CopyFrom_(Tensor.Randn(g, p.ShapeArray()).Mul(2f));
                else if (name.Contains(".delta.", StringComparison.Ordinal)) p.CopyFrom_(Tensor.Randn(g, p.ShapeArray()).Mul(0.3f));
            }
        }
    }

    [TestMethod]
    public void TrainableCounts_AreEachMethodsFormula()
    {
        // PaFi: ⌈0.1 · 96⌉ = 10 entries per layer (fc1 and fc2 both hold 96 weights), 2 blocks.
        Assert.AreEqual((40L, BaseParameters + 40), PeftModel.Inject(new TinyModel(new Generator(1)), Pafi()).GetNumberOfTrainableParameters());
        // FaR: fc1 ⌈0.25 · 12⌉ = 3 rows × (8 + 1), fc2 ⌈0.25 · 8⌉ = 2 rows × (12 + 1), 2 blocks.
        Assert.AreEqual((2L * (27 + 26), BaseParameters + 106), PeftModel.Inject(new TinyModel(new Generator(1)), Far()).GetNumberOfTrainableParameters());
        // Diff pruning: w and log α, both [out, in], per layer.
        Assert.AreEqual((2L * 2 * 2 * 96, BaseParameters + 768), PeftModel.Inject(new TinyModel(new Generator(1)), Diff()).GetNumberOfTrainableParameters());
    }

    [TestMethod]
    public void AtInit_EveryMethodLeavesTheModelBitIdentical_AndGradientsReachOnlyItsParameters()
    {
        foreach (var config in All())
        {
            var model = new TinyModel(new Generator(2));
            var x = Input();
            var before = Run(model, x);
            var peft = PeftModel.Inject(model, config);
            AssertBitIdentical(before, Run(model, x), config.PeftType);
            Randomise(peft, 3);
            model.Train();
            model.Forward(x).Sum().Backward();
            foreach (var (name, p) in model.NamedParameters())
            {
                bool delta = name.Contains(".delta.", StringComparison.Ordinal);
                Assert.AreEqual(delta, p.RequiresGrad, $"{config.PeftType}: {name}");
                Assert.AreEqual(delta, p.Grad is not null, $"{config.PeftType}: gradient of {name}");
            }
        }
    }

    [TestMethod]
    public void Selection_PafiTakesTheSmallestEntries_FarTheLargestRowsByMagnitudeOrGradient()
    {
        var model = new TinyModel(new Generator(4));
        var w = ((Linear)model.GetModule("layers.0.mlp.fc1")).Weight.ToArray();
        _ = PeftModel.Inject(model, Pafi());
        var pafi = (PafiDelta)((WeightDeltaLinear)model.GetModule("layers.0.mlp.fc1")).Delta("default");
        var chosen = pafi.Entries.Select(e => e.Row * 8 + e.Column).ToHashSet();
        Assert.AreEqual(10, chosen.Count);
        double largestChosen = chosen.Max(i => Math.Abs(w[i]));
        double smallestOther = Enumerable.Range(0, 96).Where(i => !chosen.Contains(i)).Min(i => Math.Abs(w[i]));
        Assert.IsTrue(largestChosen <= smallestOther, $"PaFi trains the smallest |w|: {largestChosen} vs {smallestOther}");

        var farModel = new TinyModel(new Generator(4));
        var peft = PeftModel.Inject(farModel, Far());
        var rowNorms = Enumerable.Range(0, 12).Select(r => Enumerable.Range(0, 8).Sum(c => Math.Abs((double)w[r * 8 + c]))).ToArray();
        var expectedRows = Enumerable.Range(0, 12).OrderByDescending(r => rowNorms[r]).Take(3).Order().ToArray();
        CollectionAssert.AreEqual(expectedRows, ((FarConfig)peft.ActiveConfig).Indices["layers.0.mlp.fc1"].ToArray());
        CollectionAssert.AreEqual(expectedRows, ((FarDelta)((WeightDeltaLinear)farModel.GetModule("layers.0.mlp.fc1")).Delta("default")).Indices.ToArray());

        // Gradient selection: a loss that reads only outputs 2 and 5 of one layer has gradient only in those rows.
        var probe = new TinyModel(new Generator(5), layerCount: 1);
        var config = new FarConfig { TargetModules = new[] { "fc1" }, TrainableFraction = 2.0 / 12 };
        var x = Input();
        FreezeAndReconfigure.SelectByGradient(probe, config, () =>
        {
            var h = ((LinearLayer)probe.GetModule("layers.0.mlp.fc1")).Forward(x);
            return h.Narrow(2, 2, 1).Sum().Add(h.Narrow(2, 5, 1).Sum().Mul(3f));
        });
        CollectionAssert.AreEqual(new[] { 2, 5 }, config.Indices["layers.0.mlp.fc1"].ToArray());
        Assert.AreEqual(FarSelection.Gradient, config.Selection);
        Assert.IsTrue(probe.Parameters().All(p => p.RequiresGrad && p.Grad is null), "flags and gradients restored");
    }

    [TestMethod]
    public void FarColumnSplit_SelectsColumnsByMagnitude_CountsAndMergesOnlyThoseColumns()
    {
        var model = new TinyModel(new Generator(16));
        var fc2 = (Linear)model.GetModule("layers.0.mlp.fc2");
        var w = fc2.Weight.ToArray();   // [8, 12]
        var bias = fc2.Bias!.ToArray();
        var peft = PeftModel.Inject(model, new FarConfig { TargetModules = new[] { "fc2" }, TrainableFraction = 0.25, Split = FarSplit.Columns });
        // ⌈0.25 · 12⌉ = 3 columns of 8 weights per layer, no bias, 2 blocks.
        Assert.AreEqual(2L * 3 * 8, peft.GetNumberOfTrainableParameters().Trainable);
        var norms = Enumerable.Range(0, 12).Select(c => Enumerable.Range(0, 8).Sum(r => Math.Abs((double)w[r * 12 + c]))).ToArray();
        var expected = Enumerable.Range(0, 12).OrderByDescending(c => norms[c]).Take(3).Order().ToArray();
        var config = (FarConfig)peft.ActiveConfig;
        CollectionAssert.AreEqual(expected, config.Indices["layers.0.mlp.fc2"].ToArray());
        var parsed = (FarConfig)PeftConfig.FromJson(config.ToJson());
        Assert.AreEqual(FarSplit.Columns, parsed.Split);
        CollectionAssert.AreEqual(expected, parsed.Indices["layers.0.mlp.fc2"].ToArray());

        Randomise(peft, 17);
        var x = Input();
        var unmerged = Run(model, x);
        peft.MergeAdapter();
        Assert.IsTrue(MaxAbsDiff(unmerged, Run(model, x)) <= 1e-5);
        var merged = fc2.Weight.ToArray();
        for (int i = 0; i < 96; i++)
        {
            if (!expected.Contains(i % 12)) Assert.AreEqual(w[i], merged[i], $"frozen column entry {i}");
        }
        Assert.IsTrue(expected.All(c => Enumerable.Range(0, 8).Any(r => merged[r * 12 + c] != w[r * 12 + c])), "trained columns changed");
        CollectionAssert.AreEqual(bias, fc2.Bias!.ToArray(), "a column split leaves the bias alone");
    }

    [TestMethod]
    public void DeltaLayers_GradientsMatchFiniteDifferences()
    {
        var g = new Generator(6);
        var weight = Tensor.Randn(g, 6, 5);
        var x = Tensor.Randn(g, 3, 5).RequiresGrad_();

        var pafi = new PafiDelta(weight, 7);
        using (Autograd.NoGrad()) pafi.Values.CopyFrom_(Tensor.Randn(g, 7));
        GradCheck.Check(_ => pafi.Forward(x), [x, pafi.Values]);

        var far = new FarDelta(6, 5, [1, 4], FarSplit.Rows, hasBias: true);
        using (Autograd.NoGrad())
        {
            far.Weight.CopyFrom_(Tensor.Randn(g, 2, 5));
            far.Bias!.CopyFrom_(Tensor.Randn(g, 2));
        }
        GradCheck.Check(_ => far.Forward(x), [x, far.Weight, far.Bias!]);
        var columns = new FarDelta(6, 5, [0, 3], FarSplit.Columns, hasBias: true);
        Assert.IsNull(columns.Bias, "a column split leaves the bias alone");
        using (Autograd.NoGrad()) columns.Weight.CopyFrom_(Tensor.Randn(g, 6, 2));
        GradCheck.Check(_ => columns.Forward(x), [x, columns.Weight]);

        // Diff pruning in evaluation mode (deterministic gates): d/dθ of Σ R∘y + λ·Σ σ(log α − β log(−γ/ζ)).
        var config = new DiffPruningConfig { L0Penalty = 0.05, Beta = 2.0 / 3, LimitLeft = -0.1, LimitRight = 1.1 };
        var diff = new DiffPruningDelta(6, 5, config, g);
        using (Autograd.NoGrad())
        {
            diff.Weight.CopyFrom_(Tensor.Randn(g, 6, 5));
            diff.LogAlpha.CopyFrom_(Tensor.Randn(g, 6, 5).Mul(0.5f)); // gates inside (0, 1): none clamped
        }
        diff.Eval();
        var r = Tensor.Randn(new Generator(7), 3, 6);
        double Objective()
        {
            using var noGrad = Autograd.NoGrad();
            var y = diff.Forward(x).ToArray();
            var rs = r.ToArray();
            double sum = 0;
            for (int i = 0; i < y.Length; i++) sum += (double)y[i] * rs[i];
            return sum + 0.05 * diff.ExpectedNonZero();
        }
        diff.Forward(x).Backward(r);
        foreach (var p in new[] { diff.Weight, diff.LogAlpha })
        {
            var analytic = p.Grad!.ToArray();
            var data = p.AsSpan<float>();
            for (int i = 0; i < analytic.Length; i++)
            {
                float original = data[i];
                data[i] = original + 1e-3f;
                double plus = Objective();
                data[i] = original - 1e-3f;
                double minus = Objective();
                data[i] = original;
                double numeric = (plus - minus) / 2e-3;
                Assert.AreEqual(numeric, analytic[i], 2e-3 + 1e-2 * Math.Abs(numeric), $"element {i}");
            }
        }
    }

    [TestMethod]
    public void DiffPruning_PenaltyGradientIsLambdaTimesSigmoidSlope_AndTrainingShrinksExpectedL0()
    {
        var config = Diff();
        config.L0Penalty = 0.01;
        var delta = new DiffPruningDelta(4, 3, config, new Generator(8));
        delta.Eval();
        // w = 0, so the task gradient through z is zero: what reaches log α is the penalty alone.
        delta.Forward(Tensor.Randn(new Generator(9), 2, 3)).Sum().Backward();
        double shift = 1.0 * Math.Log(1.5 / 1.5);
        double q = 1 / (1 + Math.Exp(-(3 - shift)));
        foreach (float v in delta.LogAlpha.Grad!.ToArray()) Assert.AreEqual(0.01 * q * (1 - q), v, 1e-9);

        var model = new TinyModel(new Generator(10));
        var peft = PeftModel.Inject(model, new DiffPruningConfig { TargetModules = new[] { "fc1" }, L0Penalty = 0.05 });
        var layer = (DiffPruningDelta)((WeightDeltaLinear)model.GetModule("layers.0.mlp.fc1")).Delta("default");
        double before = layer.ExpectedNonZero();
        var optimizer = new Microsoft.ML.Peft.Optim.AdamW(peft.TrainableParameters().Select(p => p.Parameter), learningRate: 0.05);
        model.Train();
        for (int step = 0; step < 10; step++)
        {
            using var scope = TensorScope.Begin();
            model.Forward(Input()).Pow(2).Mean().Backward();
            optimizer.Step();
            optimizer.ZeroGrad();
        }
        Assert.IsTrue(layer.ExpectedNonZero() < before - 1, $"the L0 penalty closes gates: {before} → {layer.ExpectedNonZero()}");
    }

    [TestMethod]
    public void Merge_MatchesUnmergedWithin1e5_AndWritesOnlyTheSelectedEntries()
    {
        foreach (var config in All())
        {
            var model = new TinyModel(new Generator(11));
            var fc1 = (Linear)model.GetModule("layers.1.mlp.fc1");
            var original = fc1.Weight.ToArray();
            var originalBias = fc1.Bias!.ToArray();
            var peft = PeftModel.Inject(model, config);
            Randomise(peft, 12);
            var x = Input();
            var delta = ((WeightDeltaLinear)model.GetModule("layers.1.mlp.fc1")).Delta("default");
            // Diff pruning folds in its pruned δ: finalise first so the unmerged forward is what merging writes.
            foreach (var (_, layer) in peft.TunerLayers()) ((WeightDeltaLinear)layer).Delta("default").FinalizeDelta();
            var unmerged = Run(model, x);
            peft.MergeAdapter();
            double diff = MaxAbsDiff(unmerged, Run(model, x));
            Assert.IsTrue(diff <= 1e-5, $"{config.PeftType}: merged vs unmerged {diff}");
            var mergedWeight = fc1.Weight.ToArray();
            int changed = Enumerable.Range(0, 96).Count(i => mergedWeight[i] != original[i]);
            int changedBias = Enumerable.Range(0, 12).Count(i => fc1.Bias!.ToArray()[i] != originalBias[i]);
            switch (config)
            {
                case PafiConfig:
                    Assert.AreEqual(10, changed, "PaFi: the 10 chosen entries");
                    Assert.AreEqual(0, changedBias);
                    break;
                case FarConfig far:
                    var rows = ((FarConfig)peft.ActiveConfig).Indices["layers.1.mlp.fc1"];
                    Assert.IsTrue(Enumerable.Range(0, 96).All(i => rows.Contains(i / 8) || mergedWeight[i] == original[i]), "FaR: only the trained rows change");
                    Assert.AreEqual(3, changedBias, "FaR: the trained rows' biases");
                    break;
                case DiffPruningConfig:
                    Assert.AreEqual(((DiffPruningDelta)delta).KeepCount, changed, "diff pruning: ⌈0.05 · 96⌉ = 5 entries survive");
                    Assert.AreEqual(5, changed);
                    break;
            }
            peft.UnmergeAdapter();
            Assert.IsTrue(MaxAbsDiff(unmerged, Run(model, x)) <= 1e-5, $"{config.PeftType}: unmerged again");
            var unloaded = peft.MergeAndUnload();
            Assert.IsFalse(unloaded.NamedModules().Any(m => m.Module is ITunerLayer));
            Assert.IsTrue(MaxAbsDiff(unmerged, Run(model, x)) <= 1e-5, $"{config.PeftType}: merge and unload");
        }
    }

    [TestMethod]
    public void SaveLoad_ReproducesOutputsBitForBit()
    {
        foreach (var config in All())
        {
            string dir = Path.Combine(Path.GetTempPath(), "delta-" + Guid.NewGuid().ToString("N"));
            try
            {
                var model = new TinyModel(new Generator(13));
                var peft = PeftModel.Inject(model, config);
                Randomise(peft, 14);
                var x = Input();
                var expected = Run(model, x);
                peft.SavePretrained(dir);
                using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
                    Assert.IsTrue(file.Names.All(n => n.StartsWith("base_model.model.layers.", StringComparison.Ordinal) && n.Contains(".delta.", StringComparison.Ordinal)), string.Join(", ", file.Names));
                StringAssert.Contains(File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName)), $"\"peft_type\": \"{config.PeftType}\"");
                var reloaded = PeftModel.FromPretrained(new TinyModel(new Generator(13)), dir, generator: new Generator(77));
                AssertBitIdentical(expected, Run((TinyModel)reloaded.Model, x), config.PeftType);
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
        }
    }

    [TestMethod]
    public void BadInput_ListsTheLinearLayers_AndGradientSelectionWithoutRowsIsRefused()
    {
        foreach (var config in new PeftConfig[] { new PafiConfig { TargetModules = new[] { "down_proj" } }, new FarConfig { TargetModules = new[] { "down_proj" } }, new DiffPruningConfig() })
        {
            var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(new TinyModel(new Generator(15)), config));
            StringAssert.Contains(e.Message, "layers.0.attn.q_proj, layers.0.attn.v_proj, layers.0.mlp.fc1, layers.0.mlp.fc2", config.PeftType);
        }
        var model = new TinyModel(new Generator(15));
        var ex = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(model, new FarConfig { TargetModules = new[] { "fc1" }, Selection = FarSelection.Gradient }));
        StringAssert.Contains(ex.Message, "SelectByGradient");
        Assert.IsFalse(model.NamedModules().Any(m => m.Module is ITunerLayer), "nothing was wrapped");
        ex = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "PAFI", "target_modules": ["fc1"], "trainable_fraction": 0}""", "p.json"));
        StringAssert.StartsWith(ex.Message, "p.json: trainable_fraction");
    }

    [TestMethod]
    public void Stories260KSst2_FarPafiAndDiffPruning_LowerTheLoss()
    {
        var configs = new PeftConfig[]
        {
            new FarConfig { TargetModules = new[] { "gate_proj", "up_proj", "down_proj" }, TrainableFraction = 0.1, TaskType = "SEQ_CLS" },
            new PafiConfig { TargetModules = new[] { "q_proj", "v_proj", "down_proj" }, TrainableFraction = 0.02, TaskType = "SEQ_CLS" },
            new DiffPruningConfig { TargetModules = new[] { "q_proj", "v_proj" }, TaskType = "SEQ_CLS" },
        };
        foreach (var config in configs)
        {
            var model = Sst2Stories.LoadModel();
            var peft = PeftModel.Inject(model, config);
            var clock = System.Diagnostics.Stopwatch.StartNew();
            var (before, after) = Sst2Stories.Train(model, peft, Sst2Stories.Steps, Sst2Stories.LearningRate);
            clock.Stop();
            Console.WriteLine($"{config.PeftType}: {peft.TrainableParametersSummary()}; loss {before:F4} → {after:F4} (head only: {Sst2Stories.HeadOnlyLoss:F4}); {Sst2Stories.Steps} steps + 2 evaluations in {clock.ElapsedMilliseconds} ms");
            Assert.IsTrue(after < before - 0.02, $"{config.PeftType}: loss {before} → {after}");
            Assert.IsTrue(after < Sst2Stories.HeadOnlyLoss, $"{config.PeftType}: {after} does not beat the head-only baseline {Sst2Stories.HeadOnlyLoss}");
        }
    }
}
