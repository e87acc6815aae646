using Microsoft.ML.Data;
using Microsoft.ML.Peft.IA3;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Selective;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// One trainer shape for every PEFT method: <see cref="PeftTextClassificationTrainer"/> with LoRA, IA3 and full
/// fine-tuning on stories260K (real pretrained Llama), BitFit on the tiny BERT fixture (stories260K has no biases),
/// each through fit → evaluate → save → load with bit-identical predictions.
/// </summary>
[TestClass]
public sealed class PeftMethodPipelineTests
{
    private static PeftTextClassificationTrainer.Options Options(PeftConfig config, string? baseModel = null) => new()
    {
        BaseModel = baseModel ?? TestPaths.Stories260K, PeftConfig = config, MaxEpochs = 1, BatchSize = 16, LearningRate = 2e-3,
        MaxSequenceLength = 24, Seed = 5, ScoringBatchSize = 16,
    };

    private static string Temp(string what) => Path.Combine(Path.GetTempPath(), $"peft-{what}-{Guid.NewGuid():N}");

    public static IEnumerable<object[]> Stories260KMethods =>
    [
        ["LORA"],
        ["IA3"],
        ["FULL_FINETUNING"],
    ];

    private static PeftConfig Config(string peftType) => peftType switch
    {
        "LORA" => new LoraConfig { Rank = 4, Alpha = 8, TargetModules = ModuleSelector.FromNames(["q_proj", "v_proj"]) },
        "IA3" => new IA3Config { TargetModules = ModuleSelector.FromNames(["k_proj", "v_proj", "down_proj"]), FeedForwardModules = ModuleSelector.FromNames(["down_proj"]) },
        "BITFIT" => SelectiveConfig.BitFit(),
        "FULL_FINETUNING" => SelectiveConfig.Full(),
        _ => throw new ArgumentOutOfRangeException(nameof(peftType)),
    };

    [TestMethod]
    [DynamicData(nameof(Stories260KMethods))]
    public void Stories260K_FitEvaluateSaveLoad_BitIdentical(string peftType)
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 64);
        var dev = Sst2.Load(ml, Sst2.Dev, 24);
        var config = Config(peftType);
        string before = config.ToJson();
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.PeftTextClassification(Options(config)))
            .Fit(train);
        Assert.AreEqual(before, config.ToJson(), "Fit works on a copy of the caller's config");
        Check(ml, model, train, dev, peftType);
    }

    [TestMethod]
    public void BitFit_TinyBert_FitEvaluateSaveLoad_BitIdentical()
    {
        string folder = EncoderPipelineTests.ModelFolder("bert");
        try
        {
            var ml = new MLContext();
            var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 48).Select(i => new Sst2Row
            {
                Sentence1 = (i % 3) switch { 0 => "the movie was good", 1 => "the plot was dull", _ => "the acting was okay" },
                Label = (i % 3).ToString(System.Globalization.CultureInfo.InvariantCulture),
            }).ToList());
            var options = Options(Config("BITFIT"), folder);
            options.MaxSequenceLength = 16;
            options.LearningRate = 1e-2;
            var model = ml.Transforms.Conversion.MapValueToKey("Label")
                .Append(ml.MulticlassClassification.Trainers.PeftTextClassification(options))
                .Fit(data);
            Check(ml, model, data, data, "BITFIT");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static void Check(MLContext ml, TransformerChain<PeftTextClassificationTransformer> model, IDataView train, IDataView dev, string peftType)
    {
        var classifier = model.LastTransformer;
        Assert.AreEqual(peftType, classifier.PeftType);
        Assert.AreEqual(peftType == "LORA", classifier is LoraTextClassificationTransformer, "LoRA classifiers keep their named type");
        Assert.AreEqual(1, classifier.TrainingHistory.Count);
        Assert.IsTrue(double.IsFinite(classifier.TrainingHistory[0].TrainLoss));

        var scored = model.Transform(dev);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        var expected = ml.Data.CreateEnumerable<KeyScored>(scored, false).ToList();
        // Accuracy as ML.NET defines it (micro: fraction of rows whose argmax is the label), recomputed from the scores.
        double accuracy = expected.Count(r => r.Label == ArgMax(r.Score) + 1) / (double)expected.Count;
        Assert.AreEqual(accuracy, metrics.MicroAccuracy, 1e-12);

        string path = Temp("method") + ".zip";
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var loaded = PeftModelPersistence.Load(ml, path, out _);
            var loadedClassifier = ((TransformerChain<ITransformer>)loaded).OfType<PeftTextClassificationTransformer>().Single();
            Assert.AreEqual(peftType, loadedClassifier.PeftType);
            Assert.AreEqual(peftType == "LORA", loadedClassifier is LoraTextClassificationTransformer);
            var actual = ml.Data.CreateEnumerable<KeyScored>(loaded.Transform(dev), false).ToList();
            Assert.AreEqual(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++) CollectionAssert.AreEqual(expected[i].Score, actual[i].Score, $"{peftType} row {i}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void FullFineTuning_AdapterFileHoldsEveryWeight()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 32);
        var model = ml.BinaryClassification.Trainers.PeftTextClassification(Options(SelectiveConfig.Full())).Fit(train);
        string folder = Temp("full");
        try
        {
            model.Model.SaveAdapter(folder);
            using var saved = SafeTensorsFile.Open(Path.Combine(folder, "adapter_model.safetensors"));
            using var pretrained = SafeTensorsFile.Open(Path.Combine(TestPaths.Stories260K, "model.safetensors"));
            // Every pretrained tensor is trained and saved under PEFT's key prefix; the new head (score) comes as
            // modules_to_save. stories260K ties lm_head to the embedding, so the checkpoint holds no lm_head to expect.
            var savedNames = saved.Names.ToHashSet();
            foreach (var name in pretrained.Names.Where(n => !n.StartsWith("lm_head", StringComparison.Ordinal)))
                Assert.IsTrue(savedNames.Contains("base_model.model." + name), $"{name} missing from the full fine-tuning file: {string.Join(", ", savedNames.Take(5))}");
            Assert.IsTrue(savedNames.Any(n => n.StartsWith("base_model.model.score.", StringComparison.Ordinal)), string.Join(", ", savedNames));
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void HeadOnly_TrainsAndSavesOnlyTheHead()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 32);
        var config = new SelectiveConfig(SelectiveMethod.HeadOnly) { TaskType = "SEQ_CLS", ModulesToSave = [] };
        var model = ml.BinaryClassification.Trainers.PeftTextClassification(Options(config)).Fit(train);
        Assert.AreEqual("HEAD_ONLY", model.PeftType);
        string folder = Temp("head");
        try
        {
            model.SaveAdapter(folder);
            using var saved = SafeTensorsFile.Open(Path.Combine(folder, "adapter_model.safetensors"));
            // stories260K's head: score = Linear(64 → 2, no bias), the only trained tensor.
            CollectionAssert.AreEqual(new[] { "base_model.model.score.weight" }, saved.Names.ToArray());
            CollectionAssert.AreEqual(new long[] { 2, 64 }, saved.GetTensor("base_model.model.score.weight").Shape.Select(d => (long)d).ToArray());
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void PredictionTransformer_ExposesTheMethodAndComposes()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 32);
        var estimator = ml.Transforms.CopyColumns("Text", "Sentence1")
            .Append(ml.BinaryClassification.Trainers.PeftTextClassification(Options(new IA3Config
            {
                TargetModules = ModuleSelector.FromNames(["k_proj", "v_proj", "down_proj"]), FeedForwardModules = ModuleSelector.FromNames(["down_proj"]),
            })));
        var chain = estimator.Fit(train);
        // Where ML.NET code expects a prediction transformer (e.g. TransformerChain<IPredictionTransformer<T>> consumers).
        IPredictionTransformer<PeftTextClassificationModelParameters> prediction = chain.LastTransformer;
        IPredictionTransformer<object> covariant = prediction;
        Assert.AreSame(prediction.Model, covariant.Model);
        var parameters = prediction.Model;
        Assert.AreEqual("IA3", parameters.PeftType);
        Assert.AreEqual(TestPaths.Stories260K, parameters.BaseModel);
        Assert.AreEqual(2, parameters.NumberOfClasses);
        Assert.IsNull(parameters.ClassNames);
        Assert.IsTrue(parameters.BaseModelWeightsSha256.ContainsKey("model.safetensors"));
        var rows = ml.Data.CreateEnumerable<BinaryScoredRow>(prediction.Transform(chain.First().Transform(train)), false).ToList();
        Assert.AreEqual(32, rows.Count);
        Assert.IsTrue(rows.All(r => Math.Abs(r.Probability - 1 / (1 + Math.Exp(-r.Score))) < 1e-6), "Probability = σ(Score)");
    }

    [TestMethod]
    public void MulticlassModelParameters_CarryClassNames()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 32);
        var chain = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassification(new LoraTextClassificationTrainer.Options
            {
                BaseModel = TestPaths.Stories260K, MaxEpochs = 1, BatchSize = 16, MaxSequenceLength = 16, TargetModules = ["q_proj"],
            }))
            .Fit(train);
        var parameters = ((IPredictionTransformer<PeftTextClassificationModelParameters>)chain.LastTransformer).Model;
        Assert.AreEqual("LORA", parameters.PeftType);
        // MapValueToKey orders keys by first appearance; the first SST-2 training rows are labelled 0, then 1.
        CollectionAssert.AreEqual(new[] { "0", "1" }, parameters.ClassNames!.ToArray());
    }

    [TestMethod]
    public void MethodMatchingNothing_FailsAtFit_NamingMethodAndModules()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 16);
        var lora = ml.BinaryClassification.Trainers.PeftTextClassification(Options(new LoraConfig { TargetModules = ModuleSelector.FromNames(["query", "value"]) }));
        var e = Assert.ThrowsExactly<ArgumentException>(() => lora.Fit(train));
        StringAssert.Contains(e.Message, "LORA");
        StringAssert.Contains(e.Message, "model.layers.*.self_attn.q_proj");
        StringAssert.Contains(e.Message, "model.layers.*.mlp.down_proj");

        // stories260K (Llama without attention/MLP biases) gives BitFit nothing to train.
        var bitFit = ml.BinaryClassification.Trainers.PeftTextClassification(Options(SelectiveConfig.BitFit()));
        e = Assert.ThrowsExactly<ArgumentException>(() => bitFit.Fit(train));
        StringAssert.Contains(e.Message, "BITFIT");
        StringAssert.Contains(e.Message, "model.layers.*.self_attn.q_proj");

        var missing = ml.BinaryClassification.Trainers.PeftTextClassification(new PeftTextClassificationTrainer.Options { BaseModel = TestPaths.Stories260K });
        e = Assert.ThrowsExactly<ArgumentException>(() => missing.Fit(train));
        StringAssert.Contains(e.Message, "PeftConfig");
    }

    private static int ArgMax(float[] values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    private sealed class KeyScored
    {
        public uint Label { get; set; }

        public float[] Score { get; set; } = [];
    }
}
