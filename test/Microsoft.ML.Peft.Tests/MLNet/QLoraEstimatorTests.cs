using System.IO.Compression;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary><see cref="QLoraEstimator"/>: LoRA text classification on a 4-bit stories260K, in pipelines, saved and reloaded.</summary>
[TestClass]
public sealed class QLoraEstimatorTests
{
    private static QLoraEstimator.Options Options() => new()
    {
        BaseModel = TestPaths.Stories260K, MaxEpochs = 1, BatchSize = 16, LearningRate = 2e-3, MaxSequenceLength = 24, Seed = 3,
        LoraRank = 4, LoraAlpha = 8, ScoringBatchSize = 16,
    };

    [TestMethod]
    public void Defaults_AreQLoRAs()
    {
        var o = new QLoraEstimator.Options();
        Assert.AreEqual(FourBitType.NF4, o.QuantizationType);
        Assert.AreEqual(64, o.QuantizationBlockSize);
        Assert.IsTrue(o.DoubleQuantization);
        Assert.AreEqual(64, o.LoraRank);
        Assert.AreEqual(16.0, o.LoraAlpha);
        Assert.AreEqual(0.05, o.LoraDropout);
        CollectionAssert.AreEqual(new[] { "all-linear" }, o.TargetModules.ToArray());
        Assert.AreEqual(AdamWStateStorage.Float32, o.OptimizerState);
        Assert.IsFalse(o.GradientCheckpointing);
        Assert.IsFalse(o.CheckpointKeepsProjectionOutputs);
    }

    [TestMethod]
    public void Binary_FitSaveLoad_FourBitBase_BitIdenticalPredictions()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 48);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 16);
        var estimator = ml.BinaryClassification.Trainers.QLora(Options());
        var model = estimator.Fit(train);
        var backend = (PeftTextClassifier)model.Scorer.Backend;
        // All linear layers of the 5 blocks (7 each) are 4-bit and carry LoRA; the score head stays float32 (modules_to_save).
        Assert.AreEqual(35, backend.Model.NamedModules().Count(m => m.Module is QuantizedLinear));
        Assert.AreEqual(35, backend.Model.NamedModules().Count(m => m.Module is LoraLinear));
        Assert.AreEqual("nf4", backend.BaseModel.Quantization!.Type);

        var expected = ml.Data.CreateEnumerable<BinaryScoredRow>(model.Transform(dev), false).ToList();
        Assert.HasCount(16, expected);
        string path = Path.Combine(Path.GetTempPath(), $"peft-qlora-{Guid.NewGuid():N}.zip");
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            using (var zip = ZipFile.OpenRead(path))
            {
                using var reader = new StreamReader(zip.Entries.Single(e => e.Name == "classifier.json").Open());
                string manifest = reader.ReadToEnd();
                StringAssert.Contains(manifest, "\"Type\": \"nf4\"");
                StringAssert.Contains(manifest, "\"BlockSize\": 64");
                StringAssert.Contains(manifest, "\"DoubleQuant\": true");
            }
            var loaded = PeftModelPersistence.Load(ml, path, out _);
            var actual = ml.Data.CreateEnumerable<BinaryScoredRow>(loaded.Transform(dev), false).ToList();
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.AreEqual(expected[i].Score, actual[i].Score, $"row {i}");
                Assert.AreEqual(expected[i].PredictedLabel, actual[i].PredictedLabel, $"row {i}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void FourBitBase_ChangesScoresOnlyByQuantizationNoise()
    {
        // Same seed and data: the fp32 LoRA classifier and the QLoRA one start from the same head and adapters, so their
        // untrained-head scores differ only through the 4-bit base; a mix-up (no quantization, or a broken base) would
        // give either identical or unrelated scores.
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 16);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 8);
        var q = Options();
        q.LearningRate = 1e-9;
        var lora = new LoraTextClassificationTrainer.Options
        {
            BaseModel = TestPaths.Stories260K, MaxEpochs = 1, BatchSize = 16, LearningRate = 1e-9, MaxSequenceLength = 24, Seed = 3,
            LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.05, TargetModules = ["all-linear"], WarmupRatio = 0.03, WeightDecay = 0, MaxGradientNorm = 0.3,
        };
        var quantized = ml.Data.CreateEnumerable<BinaryScoredRow>(ml.BinaryClassification.Trainers.QLora(q).Fit(train).Transform(dev), false).Select(r => r.Score).ToArray();
        var full = ml.Data.CreateEnumerable<BinaryScoredRow>(ml.BinaryClassification.Trainers.LoraTextClassification(lora).Fit(train).Transform(dev), false).Select(r => r.Score).ToArray();
        double maxDiff = quantized.Zip(full, (a, b) => Math.Abs(a - b)).Max();
        Assert.IsGreaterThan(0.0, maxDiff, "the 4-bit base must change the scores");
        Assert.IsLessThan(0.5 * full.Select(Math.Abs).Max() + 0.05, maxDiff, $"4-bit noise too large: {maxDiff}");
    }

    [TestMethod]
    public void Checkpointing_GivesBitIdenticalScores_AndEightBitStates_CloseOnes()
    {
        // Rank 64 (QLoRA's default): every LoRA matrix of stories260K has ≥ 4,096 weights, so its AdamW moments are
        // really stored in 8 bits. Dropout 0.05 is on, so checkpointing must replay the masks to match.
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 32);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 16);
        float[] Scores(AdamWStateStorage state, bool checkpointing, bool keepProjectionOutputs = false)
        {
            var o = Options();
            o.LoraRank = 64;
            o.LoraAlpha = 16;
            o.OptimizerState = state;
            o.GradientCheckpointing = checkpointing;
            o.CheckpointKeepsProjectionOutputs = keepProjectionOutputs;
            return ml.Data.CreateEnumerable<BinaryScoredRow>(ml.BinaryClassification.Trainers.QLora(o).Fit(train).Transform(dev), false).Select(r => r.Score).ToArray();
        }
        var plain = Scores(AdamWStateStorage.Float32, checkpointing: false);
        CollectionAssert.AreEqual(plain, Scores(AdamWStateStorage.Float32, checkpointing: true), "checkpointing changes no gradient");
        CollectionAssert.AreEqual(plain, Scores(AdamWStateStorage.Float32, checkpointing: true, keepProjectionOutputs: true), "nor does keeping o_proj/down_proj outputs");
        var eightBit = Scores(AdamWStateStorage.EightBit, checkpointing: true);
        double maxDiff = plain.Zip(eightBit, (a, b) => Math.Abs(a - b)).Max();
        double spread = plain.Max() - plain.Min();
        Assert.IsGreaterThan(0.0, maxDiff, "8-bit states are in use");
        Assert.IsLessThan(0.05 * spread, maxDiff, $"8-bit vs 32-bit scores: max |Δ| {maxDiff:G3}, score spread {spread:G3}");
    }

    [TestMethod]
    public void KeepingProjectionOutputs_WithoutCheckpointing_IsRefusedAtFit_NamingBothOptions()
    {
        var ml = new MLContext();
        var data = Sst2.LoadBinary(ml, Sst2.Train, 4);
        var o = Options();
        o.CheckpointKeepsProjectionOutputs = true;
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.BinaryClassification.Trainers.QLora(o).Fit(data));
        StringAssert.Contains(e.Message, "CheckpointKeepsProjectionOutputs");
        StringAssert.Contains(e.Message, "GradientCheckpointing");
    }

    [TestMethod]
    public void BadBlockSize_IsRefusedAtFit()
    {
        var ml = new MLContext();
        var data = Sst2.LoadBinary(ml, Sst2.Train, 4);
        var block = Options();
        block.QuantizationBlockSize = 48;
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.BinaryClassification.Trainers.QLora(block).Fit(data));
    }
}
