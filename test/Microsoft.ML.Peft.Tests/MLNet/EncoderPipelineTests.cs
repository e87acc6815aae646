using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// Encoder bases through the same estimator: the tiny random BERT / DistilBERT checkpoints of the model fixtures,
/// with a small WordPiece vocabulary written next to them (their vocabularies have ~100 entries), on sentence pairs.
/// </summary>
[TestClass]
public sealed class EncoderPipelineTests
{
    private static readonly string[] Words =
        ["the", "movie", "film", "is", "was", "not", "very", "good", "great", "fun", "bad", "awful", "dull", "boring", "a", "and", "plot", "acting", "okay", "fine"];

    /// <summary>A model folder: the fixture's config.json and weights plus a vocab.txt of at most 99 entries.</summary>
    private static string ModelFolder(string fixture)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"peft-{fixture}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        string source = TestPaths.Fixture("reference", "models", fixture);
        File.Copy(Path.Combine(source, "config.json"), Path.Combine(folder, "config.json"));
        File.Copy(Path.Combine(source, "model.safetensors"), Path.Combine(folder, "model.safetensors"));
        var vocab = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
        vocab.AddRange(Words);
        vocab.AddRange(Enumerable.Range('a', 26).Select(c => ((char)c).ToString()));
        vocab.AddRange(Enumerable.Range('a', 26).Select(c => "##" + (char)c));
        File.WriteAllLines(Path.Combine(folder, "vocab.txt"), vocab);
        Assert.IsTrue(vocab.Count <= 99);
        return folder;
    }

    /// <summary>Three classes (the fixtures' heads have three outputs), from the adjective in the first sentence.</summary>
    private static IDataView PairData(MLContext ml, int rows)
    {
        string[][] words = [["good", "great", "fun"], ["bad", "awful", "dull", "boring"], ["okay", "fine"]];
        string[] labels = ["positive", "negative", "neutral"];
        var data = Enumerable.Range(0, rows).Select(i =>
        {
            int label = i % 3;
            string word = words[label][i % words[label].Length];
            return new PairRow { Sentence1 = $"the movie was {word}", Sentence2 = i % 2 == 0 ? "the plot" : "the acting and the plot", Label = labels[label] };
        });
        return ml.Data.LoadFromEnumerable(data.ToList());
    }

    [TestMethod]
    [DataRow("bert")]
    [DataRow("distilbert")]
    public void SentencePairs_TrainScoreSaveLoad(string fixture)
    {
        string folder = ModelFolder(fixture);
        string path = folder + ".zip";
        try
        {
            var ml = new MLContext();
            var options = new LoraTextClassificationTrainer.Options
            {
                BaseModel = folder, Sentence2ColumnName = "Sentence2", MaxEpochs = 3, BatchSize = 8, LearningRate = 5e-3, MaxSequenceLength = 16,
                LoraRank = 4, LoraAlpha = 8, Seed = 1,
            };
            var train = PairData(ml, 48);
            var trainer = ml.MulticlassClassification.Trainers.LoraTextClassification(options);
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer).Fit(train);
            var lora = model.LastTransformer;
            Assert.AreEqual(3, lora.NumberOfClasses);
            Assert.AreEqual(3, lora.TrainingHistory.Count);
            Assert.IsTrue(lora.TrainingHistory[2].TrainLoss < lora.TrainingHistory[0].TrainLoss,
                $"train loss {lora.TrainingHistory[0].TrainLoss} -> {lora.TrainingHistory[2].TrainLoss}");
            var test = PairData(ml, 12);
            var expected = ml.Data.CreateEnumerable<KeyScoredRow>(model.Transform(test), false).ToList();
            Assert.IsTrue(expected.All(r => r.Score.All(float.IsFinite) && Math.Abs(r.Score.Sum() - 1) < 1e-5));

            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var loaded = PeftModelPersistence.Load(ml, path, out _);
            var actual = ml.Data.CreateEnumerable<KeyScoredRow>(loaded.Transform(test), false).ToList();
            for (int i = 0; i < expected.Count; i++) CollectionAssert.AreEqual(expected[i].Score, actual[i].Score, $"row {i}");

            // The second sentence matters (token type ids / separator): replacing it changes the scores.
            var swapped = ml.Data.LoadFromEnumerable(ml.Data.CreateEnumerable<PairRow>(test, false)
                .Select(r => new PairRow { Sentence1 = r.Sentence1, Sentence2 = "a", Label = r.Label }).ToList());
            var other = ml.Data.CreateEnumerable<KeyScoredRow>(model.Transform(swapped), false).ToList();
            Assert.IsTrue(expected.Zip(other).Any(p => !p.First.Score.SequenceEqual(p.Second.Score)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
            File.Delete(path);
        }
    }

    private sealed class PairRow
    {
        public string Sentence1 { get; set; } = "";

        public string Sentence2 { get; set; } = "";

        public string Label { get; set; } = "";
    }

    private sealed class KeyScoredRow
    {
        public float[] Score { get; set; } = [];

        public uint PredictedLabel { get; set; }
    }
}
