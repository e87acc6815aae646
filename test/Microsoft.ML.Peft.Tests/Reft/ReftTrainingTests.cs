using Microsoft.ML.Data;
using Microsoft.ML.Peft.Reft;
using Microsoft.ML.Peft.Tests.MLNet;

namespace Microsoft.ML.Peft.Tests.Reft;

/// <summary>
/// LoReFT through the ML.NET trainer (<see cref="PeftTextClassificationTrainer"/>) on stories260K and the first 64
/// SST-2 training sentences (right-padded batches, so "f1+l1" must find each row's own last token): the mean training
/// loss falls from the first to the last epoch, and the saved pipeline reloads with bit-identical scores.
/// </summary>
[TestClass]
public sealed class ReftTrainingTests
{
    [TestMethod]
    public void Stories260K_Sst2Fit_LowersTheLoss_AndSaveLoadIsBitIdentical()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 64);
        var options = new PeftTextClassificationTrainer.Options
        {
            BaseModel = TestPaths.Stories260K, MaxEpochs = 3, BatchSize = 16, LearningRate = 1e-2, WarmupRatio = 0,
            MaxSequenceLength = 24, Seed = 5, ScoringBatchSize = 16,
            PeftConfig = new ReftConfig { Layers = [2, 4], LowRankDimension = 4, Positions = "f1+l1", Dropout = 0.05 },
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.PeftTextClassification(options))
            .Fit(train);
        var classifier = model.LastTransformer;
        Assert.AreEqual("REFT", classifier.PeftType);
        var history = classifier.TrainingHistory;
        Console.WriteLine($"LoReFT SST-2 train loss per epoch: {string.Join(" → ", history.Select(h => h.TrainLoss.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.AreEqual(3, history.Count);
        Assert.IsTrue(history[^1].TrainLoss < history[0].TrainLoss - 0.01, $"loss {history[0].TrainLoss:F4} → {history[^1].TrainLoss:F4} did not go down");

        var scores = ml.Data.CreateEnumerable<KeyScored>(model.Transform(train), false).Select(r => r.Score).ToList();
        string path = Path.Combine(Path.GetTempPath(), $"peft-reft-{Guid.NewGuid():N}.zip");
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var loaded = PeftModelPersistence.Load(ml, path, out _);
            var again = ml.Data.CreateEnumerable<KeyScored>(loaded.Transform(train), false).Select(r => r.Score).ToList();
            Assert.AreEqual(scores.Count, again.Count);
            for (int i = 0; i < scores.Count; i++) CollectionAssert.AreEqual(scores[i], again[i], $"row {i}");
        }
        finally
        {
            File.Delete(path);
        }
    }

    private sealed class KeyScored
    {
        public float[] Score { get; set; } = [];
    }
}
