using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// Every architecture family through the same estimator: the tiny random checkpoints of the model fixtures (encoders
/// BERT, DistilBERT, RoBERTa; decoders GPT-2, GPT-NeoX pooling the last non-pad token), with a small tokenizer written
/// next to them (their vocabularies have ~100 entries: WordPiece for BERT-style models, character-level byte BPE for
/// the others), on sentence pairs.
/// </summary>
[TestClass]
public sealed class EncoderPipelineTests
{
    private static readonly string[] Words =
        ["the", "movie", "film", "is", "was", "not", "very", "good", "great", "fun", "bad", "awful", "dull", "boring", "a", "and", "plot", "acting", "okay", "fine"];

    /// <summary>
    /// A model folder: the fixture's config.json (dropout off unless <paramref name="keepDropout"/>) and weights plus a
    /// vocab.txt of at most 99 entries.
    /// </summary>
    internal static string ModelFolder(string fixture, bool keepDropout = false)
    {
        string folder = Path.Combine(Path.GetTempPath(), $"peft-{fixture}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(folder);
        string source = TestPaths.Fixture("reference", "models", fixture);
        // Dropout off (every "*dropout*" / "*pdrop" number in config.json): the test asserts that 4 epochs on 48 rows
        // lower the training loss, which random masks on a model this small can hide.
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")))!.AsObject();
        foreach (var key in config.Select(p => p.Key).Where(k => !keepDropout && (k.Contains("dropout", StringComparison.Ordinal) || k.EndsWith("pdrop", StringComparison.Ordinal))).ToList())
        {
            if (config[key] is System.Text.Json.Nodes.JsonValue v && v.TryGetValue<double>(out _)) config[key] = 0.0;
        }
        File.WriteAllText(Path.Combine(folder, "config.json"), config.ToJsonString());
        File.Copy(Path.Combine(source, "model.safetensors"), Path.Combine(folder, "model.safetensors"));
        var letters = Enumerable.Range('a', 26).Select(c => ((char)c).ToString()).ToList();
        if (fixture is "bert" or "distilbert")
        {
            var vocab = new List<string> { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" };
            vocab.AddRange(Words);
            vocab.AddRange(letters);
            vocab.AddRange(letters.Select(c => "##" + c));
            File.WriteAllLines(Path.Combine(folder, "vocab.txt"), vocab);
            Assert.IsTrue(vocab.Count <= 99);
            return folder;
        }
        // Byte-level BPE without merges: every character is a token ("Ġ" = space). Id 0 is a special token, so a
        // decoder's pad_token_id 0 never occurs in text.
        var bpe = new List<string> { "<s>", "<pad>", "</s>", "<unk>", "\u0120" };
        bpe.AddRange(letters);
        string json = "{" + string.Join(", ", bpe.Select((t, i) => $"\"{t}\": {i}")) + "}";
        File.WriteAllText(Path.Combine(folder, "vocab.json"), json);
        File.WriteAllText(Path.Combine(folder, "merges.txt"), "#version: 0.2\n");
        if (fixture == "roberta")
        {
            File.WriteAllText(Path.Combine(folder, "special_tokens_map.json"),
                "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"unk_token\": \"<unk>\", \"pad_token\": \"<pad>\", \"cls_token\": \"<s>\", \"sep_token\": \"</s>\"}");
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{\"tokenizer_class\": \"RobertaTokenizer\"}");
        }
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
    [DataRow("roberta")]
    [DataRow("gpt2")]
    [DataRow("gpt_neox")]
    public void SentencePairs_TrainScoreSaveLoad(string fixture)
    {
        string folder = ModelFolder(fixture);
        string path = folder + ".zip";
        try
        {
            var ml = new MLContext();
            var options = new LoraTextClassificationTrainer.Options
            {
                BaseModel = folder, Sentence2ColumnName = "Sentence2", MaxEpochs = 4, BatchSize = 8, LearningRate = 1e-2, MaxSequenceLength = 16,
                LoraRank = 4, LoraAlpha = 8, Seed = 1,
            };
            var train = PairData(ml, 48);
            var trainer = ml.MulticlassClassification.Trainers.LoraTextClassification(options);
            var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(trainer).Fit(train);
            var lora = model.LastTransformer;
            Assert.AreEqual(3, lora.NumberOfClasses);
            Assert.AreEqual(4, lora.TrainingHistory.Count);
            Assert.IsTrue(lora.TrainingHistory[3].TrainLoss < lora.TrainingHistory[0].TrainLoss,
                $"train loss {lora.TrainingHistory[0].TrainLoss} -> {lora.TrainingHistory[3].TrainLoss}");
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

    [TestMethod]
    public void HeadTrainedForOtherClassCount_IsReinitialised()
    {
        // The BERT fixture's classifier has 3 outputs; a binary task needs 2.
        string folder = ModelFolder("bert");
        try
        {
            var ml = new MLContext();
            var log = new List<string>();
            var options = new LoraTextClassificationTrainer.Options { BaseModel = folder, MaxEpochs = 1, BatchSize = 8, MaxSequenceLength = 16, Log = log.Add };
            var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 16).Select(i => new { Sentence1 = i % 2 == 0 ? "good fun" : "dull plot", Label = i % 2 == 0 }).ToList());
            var model = ml.BinaryClassification.Trainers.LoraTextClassification(options).Fit(data);
            Assert.AreEqual(2, model.NumberOfClasses);
            Assert.IsTrue(log.Any(l => l.Contains("classifier.weight", StringComparison.Ordinal)), string.Join("\n", log));
            Assert.IsTrue(ml.Data.CreateEnumerable<BinaryScoredRow>(model.Transform(data), false).All(r => float.IsFinite(r.Score)));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
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
