using System.IO.Compression;
using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.Tests.MLNet;

[TestClass]
public sealed class PersistenceTests
{
    private static LoraTextClassificationTrainer.Options Options() => new()
    {
        BaseModel = TestPaths.Stories260K, MaxEpochs = 1, BatchSize = 16, LearningRate = 0.05, MaxSequenceLength = 32, Seed = 2, ScoringBatchSize = 8,
    };

    private static string TempFile() => Path.Combine(Path.GetTempPath(), "peft-model-" + Guid.NewGuid().ToString("N") + ".zip");

    [TestMethod]
    public void SaveLoad_Pipeline_PredictionsBitIdentical()
    {
        var ml = new MLContext(seed: 1);
        var train = Sst2.Load(ml, Sst2.Train, 64);
        var factory = new TinyFactory();
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(new LoraTextClassificationTrainer(Options(), ClassificationKind.Multiclass, factory))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        string path = TempFile();
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            using (var zip = ZipFile.OpenRead(path))
            {
                var names = zip.Entries.Select(e => e.FullName).ToHashSet();
                CollectionAssert.IsSubsetOf(new[] { "peft_pipeline.json", "input_schema.zip", "stages/000/model.zip", "stages/001/adapter_config.json",
                    "stages/001/adapter_model.safetensors", "stages/001/classifier.json", "stages/002/model.zip" }, names.ToArray());
            }
            var loaded = PeftModelPersistence.Load(ml, path, out var schema, baseModel: null, factory, log: null);
            Assert.AreEqual(1, factory.Loads);
            Assert.IsNotNull(schema);
            Assert.AreEqual(train.Schema.Count, schema.Count);
            var dev = Sst2.Load(ml, Sst2.Dev, 30);
            var expected = ml.Data.CreateEnumerable<ScoredRow>(model.Transform(dev), false).ToList();
            var actual = ml.Data.CreateEnumerable<ScoredRow>(loaded.Transform(dev), false).ToList();
            Assert.AreEqual(expected.Count, actual.Count);
            for (int i = 0; i < expected.Count; i++)
            {
                CollectionAssert.AreEqual(expected[i].Score, actual[i].Score, $"row {i}");
                Assert.AreEqual(expected[i].PredictedLabel, actual[i].PredictedLabel);
            }
            var engine = ml.Model.CreatePredictionEngine<Sst2Row, ScoredRow>(loaded);
            Assert.AreEqual(expected[0].PredictedLabel, engine.Predict(new Sst2Row { Sentence1 = ml.Data.CreateEnumerable<Sst2Row>(dev, false).First().Sentence1 }).PredictedLabel);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void FilesOfTheFirstRelease_LoraStageKind_StillLoad()
    {
        var ml = new MLContext(seed: 1);
        var train = Sst2.LoadBinary(ml, Sst2.Train, 32);
        var factory = new TinyFactory();
        var model = new LoraTextClassificationTrainer(Options(), ClassificationKind.Binary, factory).Fit(train);
        string path = TempFile();
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Update))
            {
                var entry = zip.GetEntry("peft_pipeline.json")!;
                string manifest;
                using (var reader = new StreamReader(entry.Open())) manifest = reader.ReadToEnd();
                StringAssert.Contains(manifest, "\"peft_text_classifier\"");
                entry.Delete();
                using var writer = new StreamWriter(zip.CreateEntry("peft_pipeline.json").Open());
                writer.Write(manifest.Replace("peft_text_classifier", "lora_text_classifier", StringComparison.Ordinal));
            }
            var loaded = PeftModelPersistence.Load(ml, path, out _, baseModel: null, factory, log: null);
            var expected = ml.Data.CreateEnumerable<BinaryScoredRow>(model.Transform(train), false).Select(r => r.Score).ToArray();
            var actual = ml.Data.CreateEnumerable<BinaryScoredRow>(loaded.Transform(train), false).Select(r => r.Score).ToArray();
            CollectionAssert.AreEqual(expected, actual);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void SaveLoad_BinaryTransformerAlone_AndAdapterStandalone()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 48);
        var factory = new TinyFactory();
        var model = new LoraTextClassificationTrainer(Options(), ClassificationKind.Binary, factory).Fit(train);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 20);
        var expected = ml.Data.CreateEnumerable<BinaryScoredRow>(model.Transform(dev), false).ToList();
        string path = TempFile();
        string folder = Path.Combine(Path.GetTempPath(), "peft-adapter-" + Guid.NewGuid().ToString("N"));
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var loaded = PeftModelPersistence.Load(ml, path, out _, null, factory, null);
            var actual = ml.Data.CreateEnumerable<BinaryScoredRow>(loaded.Transform(dev), false).ToList();
            for (int i = 0; i < expected.Count; i++)
            {
                Assert.AreEqual(expected[i].Score, actual[i].Score);
                Assert.AreEqual(expected[i].Probability, actual[i].Probability);
                Assert.AreEqual(expected[i].PredictedLabel, actual[i].PredictedLabel);
            }

            model.SaveAdapter(folder);
            Assert.IsTrue(File.Exists(Path.Combine(folder, "adapter_config.json")));
            var fromAdapter = PeftModelPersistence.FromAdapter(folder, Options(), ClassificationKind.Binary, 2, null, factory);
            var again = ml.Data.CreateEnumerable<BinaryScoredRow>(fromAdapter.Transform(dev), false).ToList();
            for (int i = 0; i < expected.Count; i++) Assert.AreEqual(expected[i].Score, again[i].Score);
        }
        finally
        {
            File.Delete(path);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void Load_RejectsPathTraversalAndChangedBaseWeights()
    {
        var ml = new MLContext();
        string path = TempFile();
        try
        {
            using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
            {
                zip.CreateEntry("peft_pipeline.json");
                zip.CreateEntry("../evil.txt");
            }
            var error = Assert.ThrowsExactly<InvalidDataException>(() => PeftModelPersistence.Load(ml, path, out _));
            StringAssert.Contains(error.Message, "../evil.txt");

            var reference = BaseModelReference.Describe("stories", TestPaths.Stories260K);
            reference.WeightsSha256["model.safetensors"] = new string('0', 64);
            var mismatch = Assert.ThrowsExactly<InvalidDataException>(() => reference.Verify(TestPaths.Stories260K));
            StringAssert.Contains(mismatch.Message, "model.safetensors");
        }
        finally
        {
            File.Delete(path);
        }
    }
}
