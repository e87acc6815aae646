using Microsoft.ML.Peft.AdaLora;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.AdaLora;

[TestClass]
public sealed class AdaLoraTests
{
    /// <summary>4 adapted layers (q_proj, v_proj × 2), init_r 6 → 24 triplets, target_r 2 → 8.</summary>
    private static AdaLoraConfig Config(bool init = true) => new()
    {
        TargetModules = new[] { "q_proj", "v_proj" },
        InitR = 6,
        TargetR = 2,
        TInit = 2,
        TFinal = 3,
        DeltaT = 2,
        TotalStep = 20,
        Alpha = 4,
        InitLoraWeights = init,
    };

    [TestMethod]
    public void TrainableCount_IsRTimesInPlusOutPlusOne_AndInitIsTheIdentityBitForBit()
    {
        var model = new TinyModel(new Generator(7));
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        long baseCount = model.Parameters().Sum(p => (long)p.Count);
        var peft = PeftModel.Inject(model, Config(), generator: new Generator(1));
        var (trainable, all) = peft.GetNumberOfTrainableParameters();
        Assert.AreEqual(4 * (6 * 8 + 8 * 6 + 6), trainable);
        Assert.AreEqual(baseCount + trainable + 4, all, "plus one frozen ranknum per layer, as PEFT counts it");
        CollectionAssert.AreEqual(expected, model.Forward(x).ToArray(), "E = 0 at init");
        var layer = (AdaLoraLinear)model.GetModule("layers.0.attn.q_proj");
        Assert.IsTrue(layer.LoraE("default").ToArray().All(v => v == 0));
        Assert.AreEqual(4f / (6f + 1e-5f), layer.Scaling("default"));
    }

    [TestMethod]
    public void Forward_IsBTimesAETimesAlphaOverRanknum_ByHandInDouble_AndMergeAgreesWithin1e5()
    {
        var g = new Generator(3);
        var layer = new AdaLoraLinear(new Linear(5, 4, g));
        layer.UpdateLayer("default", 3, 4, 0, initLoraWeights: false, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        var x = Tensor.Randn(new Generator(4), 2, 5);
        var y = layer.Forward(x).ToArray();
        var w = ((Linear)layer.Base).Weight.ToArray();
        var bias = ((Linear)layer.Base).Bias!.ToArray();
        var a = layer.LoraA("default").ToArray();
        var e = layer.LoraE("default").ToArray();
        var b = layer.LoraB("default").ToArray();
        var xs = x.ToArray();
        double scaling = 4 / (3 + 1e-5);
        for (int row = 0; row < 2; row++)
        {
            for (int o = 0; o < 4; o++)
            {
                double expected = bias[o];
                for (int j = 0; j < 5; j++) expected += (double)w[o * 5 + j] * xs[row * 5 + j];
                for (int i = 0; i < 3; i++)
                {
                    double ax = 0;
                    for (int j = 0; j < 5; j++) ax += (double)a[i * 5 + j] * xs[row * 5 + j];
                    expected += scaling * b[o * 3 + i] * e[i] * ax;
                }
                Assert.AreEqual(expected, y[row * 4 + o], 1e-4 * Math.Max(1, Math.Abs(expected)), $"y[{row}, {o}]");
            }
        }
        layer.Merge();
        double diff = LoraFixtures.MaxAbsDiff(Tensor.From(y, 2, 4), layer.Forward(x));
        double scale = Math.Max(1, y.Max(v => Math.Abs(v)));
        Assert.IsTrue(diff <= 1e-5 * scale, $"merged output differs by {diff} (outputs up to {scale})");
        layer.Unmerge();
        var restored = ((Linear)layer.Base).Weight.ToArray();
        for (int i = 0; i < w.Length; i++) Assert.AreEqual(w[i], restored[i], 1e-5);
    }

    [TestMethod]
    public void Gradients_FlowOnlyIntoA_E_B()
    {
        var model = new TinyModel(new Generator(7));
        PeftModel.Inject(model, Config(init: false), generator: new Generator(1));
        model.Forward(LoraFixtures.Input()).Sum().Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool adapter = name.Contains(".lora_A.", StringComparison.Ordinal) || name.Contains(".lora_E.", StringComparison.Ordinal) || name.Contains(".lora_B.", StringComparison.Ordinal);
            Assert.AreEqual(adapter, p.Grad is not null, name);
            if (adapter) Assert.IsTrue(p.Grad!.ToArray().Any(v => v != 0), $"{name}: all-zero gradient");
        }
    }

    [TestMethod]
    public void OrthogonalRegulariser_EqualsTheHandComputedMeanOfFrobeniusDistances()
    {
        var model = new TinyModel(new Generator(7));
        var config = Config(init: false);
        config.OrthRegWeight = 0.3;
        var peft = PeftModel.Inject(model, config, generator: new Generator(1));
        var hooks = AdapterTrainingHooks.Create(peft, totalSteps: 20);
        double sum = 0;
        int count = 0;
        foreach (var (_, tuner) in peft.TunerLayers())
        {
            var layer = (AdaLoraLinear)tuner;
            sum += DistanceToIdentity(layer.LoraA("default").ToArray(), 6, 8, rowsGram: true);
            sum += DistanceToIdentity(layer.LoraB("default").ToArray(), 8, 6, rowsGram: false);
            count += 2;
        }
        var extra = hooks.ExtraLoss(peft)!;
        Assert.AreEqual(0.3 * sum / count, extra.Item(), 1e-5 * (0.3 * sum / count));
        extra.Backward();
        Assert.IsNotNull(((AdaLoraLinear)model.GetModule("layers.1.attn.v_proj")).LoraB("default").Grad, "the regulariser is differentiable");
    }

    [TestMethod]
    public void BudgetSchedule_IsPeftsCubicFromInitToTarget()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(), generator: new Generator(1));
        var allocator = new RankAllocator((AdaLoraConfig)peft.ActiveConfig, "default", peft.TunerLayers().Select(t => (t.Path, (AdaLoraLinear)t.Layer)));
        Assert.AreEqual(24, allocator.InitialBudget);
        Assert.AreEqual(8, allocator.TargetBudget);
        // Hand values: budget = floor(16·(1 − (t − 2)/15)³ + 8); masks on even steps in (2, 17], always after 17.
        Assert.AreEqual((24, false), allocator.BudgetSchedule(0));
        Assert.AreEqual((24, false), allocator.BudgetSchedule(2));
        Assert.AreEqual((21, false), allocator.BudgetSchedule(3)); // 16·(14/15)³ = 13.01
        Assert.AreEqual((18, true), allocator.BudgetSchedule(4)); // 16·(13/15)³ = 10.42
        Assert.AreEqual((9, true), allocator.BudgetSchedule(10)); // 16·(7/15)³ = 1.63
        Assert.AreEqual((8, false), allocator.BudgetSchedule(17)); // the end of the cubic phase
        Assert.AreEqual((8, true), allocator.BudgetSchedule(18));
        Assert.AreEqual((8, true), allocator.BudgetSchedule(19));
    }

    [TestMethod]
    public void Training_PrunesToTheScheduledBudget_ReachesTargetR_AndKeepsPrunedValuesAtZero()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(), generator: new Generator(1));
        var hooks = (AdaLoraTrainingHooks)((IProvidesTrainingHooks)peft.ActiveConfig).CreateTrainingHooks(peft, "default", 20);
        var optimizer = new AdamW(hooks.ParameterGroups(peft), learningRate: 1e-2);
        var x = LoraFixtures.Input();
        var targets = Tensor.FromInt32([0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 10);
        var layers = peft.TunerLayers().Select(t => (AdaLoraLinear)t.Layer).ToList();
        int Kept() => layers.Sum(l => l.LoraE("default").ToArray().Count(v => v != 0));
        for (int step = 0; step < 20; step++)
        {
            var loss = model.Forward(x).Reshape(10, 3).CrossEntropy(targets).Add(hooks.ExtraLoss(peft)!);
            loss.Backward();
            optimizer.Step();
            hooks.AfterOptimizerStep(peft, step);
            var (budget, masks) = hooks.Allocator.BudgetSchedule(step);
            if (masks || step == 17) Assert.AreEqual(budget, Kept(), $"step {step}: kept singular values");
            if (step >= 17)
            {
                Assert.AreEqual(8, Kept(), $"step {step}: target_r · layers");
                Assert.AreEqual(8, hooks.RankPattern!.Values.Sum(p => p.Count(k => k)));
                foreach (var layer in layers)
                {
                    var path = peft.TunerLayers().First(t => ReferenceEquals(t.Layer, layer)).Path;
                    var e = layer.LoraE("default").ToArray();
                    var keep = hooks.RankPattern[path];
                    for (int i = 0; i < e.Length; i++) Assert.IsTrue(keep[i] || e[i] == 0, $"{path} E[{i}] pruned but {e[i]}");
                }
            }
            optimizer.ZeroGrad();
        }
    }

    [TestMethod]
    public void SaveLoad_UsesPeftsKeys_AndReproducesOutputsBitForBit()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(init: false), generator: new Generator(1));
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        var keys = peft.GetAdapterStateDict().Keys.ToList();
        CollectionAssert.IsSubsetOf(new[] { "base_model.model.layers.0.attn.q_proj.lora_A", "base_model.model.layers.0.attn.q_proj.lora_B", "base_model.model.layers.0.attn.q_proj.lora_E" }, keys);
        Assert.AreEqual(12, keys.Count, "ranknum is not saved");
        string dir = Path.Combine(Path.GetTempPath(), "adalora-" + Guid.NewGuid().ToString("N"));
        try
        {
            peft.SavePretrained(dir);
            var loadedConfig = (AdaLoraConfig)PeftConfig.Load(dir);
            Assert.AreEqual(6, loadedConfig.InitR);
            Assert.AreEqual(20, loadedConfig.TotalStep);
            Assert.AreEqual(0.85, loadedConfig.Beta1);
            var fresh = new TinyModel(new Generator(7));
            PeftModel.FromPretrained(fresh, dir);
            CollectionAssert.AreEqual(expected, fresh.Forward(x).ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void ConfigJson_HasPeftsDefaults_AndRejectsBadSchedules()
    {
        var config = (AdaLoraConfig)PeftConfig.FromJson("{\"peft_type\": \"ADALORA\", \"target_modules\": [\"q_proj\"], \"total_step\": 100}");
        Assert.AreEqual((8, 12, 0, 0, 1, 0.85, 0.85, 0.5), (config.TargetR, config.InitR, config.TInit, config.TFinal, config.DeltaT, config.Beta1, config.Beta2, config.OrthRegWeight));
        Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("{\"peft_type\": \"ADALORA\", \"total_step\": 10, \"tinit\": 6, \"tfinal\": 4}"));
        Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("{\"peft_type\": \"ADALORA\", \"use_dora\": true}"));
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("{\"peft_type\": \"ADALORA\", \"rank_pattern\": {\"q\": [true]}}", "x.json"));
        StringAssert.Contains(e.Message, "x.json");
    }

    private static double DistanceToIdentity(float[] m, int rows, int cols, bool rowsGram)
    {
        // rowsGram: M·Mᵀ (rows × rows); otherwise Mᵀ·M (cols × cols).
        int n = rowsGram ? rows : cols;
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double dot = 0;
                if (rowsGram)
                {
                    for (int k = 0; k < cols; k++) dot += (double)m[i * cols + k] * m[j * cols + k];
                }
                else
                {
                    for (int k = 0; k < rows; k++) dot += (double)m[k * cols + i] * m[k * cols + j];
                }
                double d = dot - (i == j ? 1 : 0);
                sum += d * d;
            }
        }
        return Math.Sqrt(sum);
    }
}
