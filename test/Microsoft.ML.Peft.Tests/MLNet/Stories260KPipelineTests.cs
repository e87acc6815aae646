using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>The real backend end to end: stories260K (Llama, last-token pooling) + LoRA on q_proj/v_proj in ML.NET pipelines.</summary>
[TestClass]
public sealed class Stories260KPipelineTests
{
    private static LoraTextClassificationTrainer.Options Options(string? checkpoints = null) => new()
    {
        BaseModel = TestPaths.Stories260K, MaxEpochs = 1, BatchSize = 16, LearningRate = 2e-3, MaxSequenceLength = 24, Seed = 3,
        LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.05, TargetModules = ["q_proj", "v_proj"], ScoringBatchSize = 16,
        CheckpointFolder = checkpoints, CheckpointEverySteps = checkpoints is null ? 0 : 2,
    };

    private static string Temp(string what) => Path.Combine(Path.GetTempPath(), $"peft-{what}-{Guid.NewGuid():N}");

    [TestMethod]
    public void Binary_FitSaveLoad_AdapterRoundTrip_BitIdentical()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 96);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 24);
        var model = ml.BinaryClassification.Trainers.LoraTextClassification(Options()).Fit(train);
        Assert.AreEqual(TestPaths.Stories260K, model.BaseModel);
        var expected = ml.Data.CreateEnumerable<BinaryScoredRow>(model.Transform(dev), false).ToList();
        var metrics = ml.BinaryClassification.Evaluate(model.Transform(dev));
        Assert.AreEqual(expected.Count(r => r.PredictedLabel == r.Label) / 24.0, metrics.Accuracy, 1e-12);

        string path = Temp("model") + ".zip", adapter = Temp("adapter");
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var loaded = PeftModelPersistence.Load(ml, path, out var schema);
            Assert.IsNotNull(schema);
            var actual = ml.Data.CreateEnumerable<BinaryScoredRow>(loaded.Transform(dev), false).ToList();
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.AreEqual(expected[i].Score, actual[i].Score, $"row {i}");
                Assert.AreEqual(expected[i].Probability, actual[i].Probability, $"row {i}");
            }

            model.SaveAdapter(adapter);
            CollectionAssert.AreEquivalent(new[] { "adapter_config.json", "adapter_model.safetensors" }, Directory.GetFiles(adapter).Select(Path.GetFileName).ToArray());
            var config = File.ReadAllText(Path.Combine(adapter, "adapter_config.json"));
            StringAssert.Contains(config, "\"modules_to_save\"");
            var imported = PeftModelPersistence.LoadBinaryAdapter(adapter, Options());
            var again = ml.Data.CreateEnumerable<BinaryScoredRow>(imported.Transform(dev), false).ToList();
            for (int i = 0; i < expected.Count; i++) Assert.AreEqual(expected[i].Score, again[i].Score, $"row {i}");
        }
        finally
        {
            File.Delete(path);
            if (Directory.Exists(adapter)) Directory.Delete(adapter, recursive: true);
        }
    }

    [TestMethod]
    public void ResumeAfterKill_WithLoraDropout_BitIdenticalToUninterrupted()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 80);   // 5 steps of 16
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 16);
        float[] Scores(ITransformer m) => ml.Data.CreateEnumerable<BinaryScoredRow>(m.Transform(dev), false).Select(r => r.Score).ToArray();
        var reference = Scores(ml.BinaryClassification.Trainers.LoraTextClassification(Options()).Fit(train));

        string folder = Temp("ckpt");
        try
        {
            var killed = Options(folder);
            killed.Progress = new Training.SyncProgress<TrainingProgress>(p =>
            {
                if (p.Phase == TrainingPhase.Step && p.Step == 3) throw new OperationCanceledException("simulated kill");
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => ml.BinaryClassification.Trainers.LoraTextClassification(killed).Fit(train));
            var resumedOptions = Options(folder);
            var events = new List<TrainingProgress>();
            resumedOptions.Progress = new Training.SyncProgress<TrainingProgress>(events.Add);
            var resumed = Scores(ml.BinaryClassification.Trainers.LoraTextClassification(resumedOptions).Fit(train));
            Assert.AreEqual(2, events.First(e => e.Phase == TrainingPhase.Resumed).Step);
            CollectionAssert.AreEqual(reference, resumed, "dropout masks, weights and optimizer state continue exactly");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void Multiclass_PredictionEngine_AgreesWithBatchedScoring()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 48);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassification(Options()))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        var dev = Sst2.Load(ml, Sst2.Dev, 10);
        var batched = ml.Data.CreateEnumerable<ScoredRow>(model.Transform(dev), false).ToList();
        var engine = ml.Model.CreatePredictionEngine<Sst2Row, ScoredRow>(model);
        var inputs = ml.Data.CreateEnumerable<Sst2Row>(dev, false).ToList();
        for (int i = 0; i < inputs.Count; i++)
        {
            var single = engine.Predict(inputs[i]);
            // Right padding and masked keys: a row scored alone equals the row scored inside a padded batch up to
            // the float rounding of different GEMM shapes.
            for (int c = 0; c < 2; c++) Assert.AreEqual(batched[i].Score[c], single.Score[c], 1e-5, $"row {i} class {c}");
        }
    }
}
