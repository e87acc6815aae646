using Microsoft.ML.Data;
using Microsoft.ML.Peft.Lycoris;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.MLNet;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lycoris;

/// <summary>
/// LoHa and LoKr on the tiny model (q_proj, v_proj [8, 8], fc1 [12, 8], fc2 [8, 12]): parameter counts by PEFT's
/// formulas, identity at init, PEFT keys and save → load bit-identical, merge within 1e-5 and unmerge, the training
/// dropouts, the config files, and a Fit through <see cref="PeftTextClassificationTrainer"/> on stories260K.
/// </summary>
[TestClass]
public sealed class LycorisModelTests
{
    private static readonly string[] Targets = ["q_proj", "v_proj", "fc1", "fc2"];

    private static LycorisConfig Config(string method, bool init = true) => method switch
    {
        "LOHA" => new LoHaConfig { Rank = 2, Alpha = 4, TargetModules = ModuleSelector.FromNames(Targets), InitWeights = init },
        "LOKR" => new LoKrConfig { Rank = 1, Alpha = 4, DecomposeBoth = true, TargetModules = ModuleSelector.FromNames(Targets), InitWeights = init },
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };

    /// <summary>PEFT's parameter count of one adapted [out, in] layer.</summary>
    private static long ExpectedCount(string method, int outF, int inF, int r, bool decomposeBoth = true, int factor = -1)
    {
        if (method == "LOHA") return 2L * r * (outF + inF);
        var (inM, inN) = LoKrFactorization.Factorize(inF, factor);
        var (outL, outK) = LoKrFactorization.Factorize(outF, factor);
        long w1 = decomposeBoth && 2 * r < Math.Max(outL, inM) ? r * (outL + inM) : outL * inM;
        long w2 = 2 * r < Math.Max(outK, inN) ? r * (outK + inN) : outK * inN;
        return w1 + w2;
    }

    [TestMethod]
    [DataRow("LOHA")]
    [DataRow("LOKR")]
    public void ParameterCounts_FollowPeftsFormulas_AndInitIsTheIdentity(string method)
    {
        var model = new TinyModel(new Generator(7));
        var x = LoraFixtures.Input();
        var before = model.Forward(x);
        var peft = PeftModel.Inject(model, Config(method), generator: new Generator(1));
        long total = 0;
        foreach (var (path, tuner) in peft.TunerLayers())
        {
            var layer = (LycorisLinear)tuner;
            long expected = ExpectedCount(method, layer.OutFeatures, layer.InFeatures, layer.Rank("default"));
            Assert.AreEqual(expected, layer.ParameterCount("default"), path);
            total += expected;
        }
        // 2 blocks × (q 8×8, v 8×8, fc1 12×8, fc2 8×12), by hand. LoHa: 2·r·(out + in) = 4·(16 + 16 + 20 + 20) per block.
        // LoKr (r 1, decompose_both): 8 = 2·4, 12 = 3·4. An 8×8 layer: W1 [2, 2] stays full (2·1 ≮ 2) = 4, W2 [4, 4] is
        // low-rank (2 < 4) = 4 + 4; fc1/fc2: W1 [3, 2] / [2, 3] low-rank (2 < 3) = 3 + 2, W2 as before = 8.
        Assert.AreEqual(method == "LOHA" ? 2 * 4 * (16 + 16 + 20 + 20) : 2 * (12 + 12 + 13 + 13), total);
        Assert.AreEqual(total, model.Parameters(trainableOnly: true).Sum(p => (long)p.Count));
        LoraFixtures.AssertBitIdentical(before, model.Forward(x), "output at init");
    }

    [TestMethod]
    public void LoKrFactors_OfAnExactDecomposeFactor_KeepPeftsOrder()
    {
        var layer = new LoKrLinear(new Linear(12, 8, new Generator(3)));
        layer.UpdateLayer("default", 8, 8, 0, 0, true, false, 4, false, new Generator(1));
        Assert.AreEqual(new LoKrShape(4, 2, 4, 3, true, true), layer.Shape("default"));
        CollectionAssert.AreEqual(new[] { 4, 4 }, layer.AdapterTensors("default").First().Tensor.ShapeArray());
        Assert.AreEqual(16L + 6, layer.ParameterCount("default"));
    }

    /// <summary>Moves every factor away from its init, as training would.</summary>
    private static void Perturb(PeftModel peft)
    {
        var noise = new Generator(8);
        using (Autograd.NoGrad())
        {
            foreach (var (_, tuner) in peft.TunerLayers())
            {
                foreach (var (_, t) in tuner.AdapterTensors("default")) t.Add_(Tensor.Randn(noise, t.ShapeArray()).Mul(0.3f));
            }
        }
    }

    [TestMethod]
    [DataRow("LOHA", "hada_w1_a,hada_w1_b,hada_w2_a,hada_w2_b")]
    [DataRow("LOKR", "lokr_w1,lokr_w2_a,lokr_w2_b")]
    public void SaveLoad_IsBitIdentical_WithPeftKeys_AndMergeMatchesWithin1e5(string method, string suffixes)
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(method), generator: new Generator(1));
        Perturb(peft);
        var x = LoraFixtures.Input();
        var expected = model.Forward(x);
        var keys = peft.GetAdapterStateDict().Keys.ToList();
        foreach (var suffix in suffixes.Split(','))
            CollectionAssert.Contains(keys, "base_model.model.layers.0.attn.q_proj." + suffix);
        string dir = Path.Combine(Path.GetTempPath(), "lycoris-" + Guid.NewGuid().ToString("N"));
        try
        {
            peft.SavePretrained(dir);
            Assert.AreEqual(method, PeftConfig.Load(dir).PeftType);
            var fresh = new TinyModel(new Generator(7));
            PeftModel.FromPretrained(fresh, dir);
            LoraFixtures.AssertBitIdentical(expected, fresh.Forward(x), "loaded output");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        var weight = ((Linear)((LycorisLinear)peft.TunerLayers().First().Layer).Base).Weight.ToArray();
        peft.MergeAdapter();
        double diff = LoraFixtures.MaxAbsDiff(expected, model.Forward(x));
        Assert.IsTrue(diff <= 1e-5, $"merged output differs by {diff}");
        foreach (var (_, layer) in peft.TunerLayers()) layer.Unmerge();
        var restored = ((Linear)((LycorisLinear)peft.TunerLayers().First().Layer).Base).Weight.ToArray();
        for (int i = 0; i < weight.Length; i++) Assert.AreEqual(weight[i], restored[i], 1e-6, $"weight[{i}] after unmerge");
    }

    [TestMethod]
    public void ModuleAndRankDropout_ActOnlyWhileTraining_AsPeft()
    {
        var g = new Generator(4);
        var baseLayer = new Linear(6, 10, g);
        var layer = new LoHaLinear(baseLayer);
        layer.UpdateLayer("default", 2, 2, rankDropout: 0.5, moduleDropout: 0, initWeights: false, g);
        layer.SetActiveAdapters(["default"], trainable: true);
        var x = Tensor.Randn(g, 3, 6);
        var baseOut = baseLayer.Forward(x).ToArray();
        var full = x.Linear(layer.DeltaWeight("default")).ToArray();
        layer.Eval();
        var eval = layer.Forward(x).ToArray();
        for (int i = 0; i < eval.Length; i++) Assert.AreEqual(baseOut[i] + full[i], eval[i], 1e-5, "eval output uses the whole ΔW");
        layer.Train();
        var trained = layer.Forward(x).ToArray();
        // Each output feature's delta is either dropped or scaled by out / kept (LoHa always rescales by the mask mean).
        int kept = 0;
        double ratio = double.NaN;
        for (int o = 0; o < 10; o++)
        {
            double d = trained[o] - baseOut[o];
            if (Math.Abs(d) < 1e-6) continue;
            kept++;
            double r = d / full[o];
            if (double.IsNaN(ratio)) ratio = r;
            Assert.AreEqual(ratio, r, 1e-3, $"feature {o} scaled like the others");
        }
        Assert.IsTrue(kept is > 0 and < 10, $"{kept} of 10 features kept with rank_dropout 0.5");
        Assert.AreEqual(10.0 / kept, ratio, 1e-3, "kept rows are divided by the mask mean");

        var skipped = new LoHaLinear(new Linear(6, 10, new Generator(4)));
        skipped.UpdateLayer("default", 2, 2, 0, moduleDropout: 0.999, initWeights: false, new Generator(9));
        skipped.SetActiveAdapters(["default"], trainable: true);
        LoraFixtures.AssertBitIdentical(skipped.Base.Forward(x), skipped.Forward(x), "module_dropout skips the adapter");
    }

    [TestMethod]
    public void ConfigJson_HasPeftsKeysAndDefaults_AndRoundTrips()
    {
        var loha = (LoHaConfig)PeftConfig.FromJson("""{"peft_type": "LOHA", "target_modules": ["q_proj"]}""");
        Assert.AreEqual((8, 8.0, 0.0, 0.0, true), (loha.Rank, loha.Alpha, loha.RankDropout, loha.ModuleDropout, loha.InitWeights));
        var lokr = (LoKrConfig)PeftConfig.FromJson("""{"peft_type": "LOKR", "target_modules": "q_proj", "r": 4, "decompose_both": true, "decompose_factor": 8, "rank_pattern": {"fc1": 2}}""");
        Assert.AreEqual((4, true, 8, false), (lokr.Rank, lokr.DecomposeBoth, lokr.DecomposeFactor, lokr.RankDropoutScale));
        Assert.AreEqual(2, lokr.RankPattern["fc1"]);
        foreach (var config in new PeftConfig[] { loha, lokr })
        {
            string json = config.ToJson();
            Assert.AreEqual(json, PeftConfig.FromJson(json).ToJson(), config.PeftType);
            StringAssert.Contains(json, "\"alpha\": 8,", "an integral alpha is written as PEFT's int");
        }
        StringAssert.Contains(lokr.ToJson(), "\"decompose_factor\": 8");
        var bad = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "LOHA", "r": 0}""", "x.json"));
        StringAssert.Contains(bad.Message, "x.json: r must be a positive integer, got 0");
    }

    [TestMethod]
    [DataRow("LOHA")]
    [DataRow("LOKR")]
    public void Stories260K_FitWithTheTrainer_AndPredictionsSurviveSaveLoad(string method)
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 32);
        var dev = Sst2.Load(ml, Sst2.Dev, 12);
        LycorisConfig config = method == "LOHA"
            ? new LoHaConfig { Rank = 4, Alpha = 8, TargetModules = ModuleSelector.FromNames(["q_proj", "v_proj"]) }
            : new LoKrConfig { Rank = 4, Alpha = 8, TargetModules = ModuleSelector.FromNames(["q_proj", "v_proj"]) };
        var options = new PeftTextClassificationTrainer.Options
        {
            BaseModel = TestPaths.Stories260K, PeftConfig = config, MaxEpochs = 1, BatchSize = 16, LearningRate = 2e-3,
            MaxSequenceLength = 24, Seed = 5, ScoringBatchSize = 16,
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.PeftTextClassification(options)).Fit(train);
        var classifier = model.LastTransformer;
        Assert.AreEqual(method, classifier.PeftType);
        Assert.IsTrue(double.IsFinite(classifier.TrainingHistory[0].TrainLoss));
        var expected = ml.Data.CreateEnumerable<ScoredRow>(model.Transform(dev), false).ToList();
        string path = Path.Combine(Path.GetTempPath(), $"lycoris-{Guid.NewGuid():N}.zip");
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var loaded = PeftModelPersistence.Load(ml, path, out _);
            var actual = ml.Data.CreateEnumerable<ScoredRow>(loaded.Transform(dev), false).ToList();
            Assert.AreEqual(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++) CollectionAssert.AreEqual(expected[i].Score, actual[i].Score, $"{method} row {i}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class ScoredRow
    {
        public float[] Score { get; set; } = [];
    }
}
