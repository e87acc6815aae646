using Microsoft.ML.Data;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// The estimator/transformer contract inside real ML.NET pipelines, on a fast tiny backend (the model-specific
/// behaviour is covered on stories260K in Stories260KPipelineTests).
/// </summary>
[TestClass]
public sealed class PipelineTests
{
    public TestContext TestContext { get; set; } = null!;

    private static LoraTextClassificationTrainer.Options Options(int seed = 1) => new()
    {
        BaseModel = TestPaths.Stories260K, MaxEpochs = 2, BatchSize = 16, LearningRate = 0.05, MaxSequenceLength = 32, Seed = seed, ScoringBatchSize = 8,
    };

    private static LoraTextClassificationTrainer Multiclass(LoraTextClassificationTrainer.Options options, TinyFactory factory) =>
        new(options, ClassificationKind.Multiclass, factory);

    private static IEstimator<ITransformer> MulticlassPipeline(MLContext ml, LoraTextClassificationTrainer.Options options, TinyFactory factory) =>
        ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(Multiclass(options, factory))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    [TestMethod]
    public void Multiclass_FitTransformEvaluate_ScoresAreSoftmaxAndKeysCarryLabelNames()
    {
        var ml = new MLContext(seed: 1);
        var train = Sst2.Load(ml, Sst2.Train, 160);
        var factory = new TinyFactory();
        var model = MulticlassPipeline(ml, Options(), factory).Fit(train);
        Assert.AreEqual(1, factory.Creates);
        var dev = Sst2.Load(ml, Sst2.Dev, 40);
        var scored = model.Transform(dev);

        var score = scored.Schema["Score"];
        Assert.AreEqual(new VectorDataViewType(NumberDataViewType.Single, 2), score.Type);
        VBuffer<ReadOnlyMemory<char>> slotNames = default;
        score.Annotations.GetValue("SlotNames", ref slotNames);
        CollectionAssert.AreEqual(new[] { "0", "1" }, slotNames.DenseValues().Select(s => s.ToString()).ToArray(), "class order = first occurrence in train");
        ReadOnlyMemory<char> kind = default;
        score.Annotations.GetValue("ScoreColumnKind", ref kind);
        Assert.AreEqual("MulticlassClassification", kind.ToString());

        var rows = ml.Data.CreateEnumerable<ScoredRow>(scored, reuseRowObject: false).ToList();
        Assert.AreEqual(40, rows.Count);
        foreach (var row in rows)
        {
            Assert.AreEqual(1.0, row.Score.Sum(), 1e-6);
            Assert.AreEqual(row.Score[1] > row.Score[0] ? "1" : "0", row.PredictedLabel);
        }

        var metrics = ml.MulticlassClassification.Evaluate(model.Transform(dev));
        Assert.AreEqual(rows.Count(r => r.PredictedLabel == (r.Label == 1 ? "0" : "1")) / 40.0, metrics.MicroAccuracy, 1e-12);
        double logLoss = rows.Average(r => -Math.Log(Math.Max(r.Score[r.Label - 1], 1e-15)));
        Assert.AreEqual(logLoss, metrics.LogLoss, 1e-6);
    }

    [TestMethod]
    public void Binary_ScoreIsMargin_ProbabilityIsSigmoid_EvaluateWorks()
    {
        var ml = new MLContext(seed: 1);
        var train = Sst2.LoadBinary(ml, Sst2.Train, 160);
        var factory = new TinyFactory();
        var trainer = new LoraTextClassificationTrainer(Options(), ClassificationKind.Binary, factory);
        var model = trainer.Fit(train);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 40);
        var scored = model.Transform(dev);
        Assert.AreEqual(NumberDataViewType.Single, scored.Schema["Score"].Type);
        Assert.AreEqual(NumberDataViewType.Single, scored.Schema["Probability"].Type);
        Assert.AreEqual(BooleanDataViewType.Instance, scored.Schema["PredictedLabel"].Type);

        // Reference: the classifier's own logits for the same texts, through the same encoder.
        var texts = ml.Data.CreateEnumerable<Sst2BinaryRow>(dev, reuseRowObject: false).Select(r => r.Sentence1).ToList();
        var logits = model.Scorer.Logits(texts, null);
        var rows = ml.Data.CreateEnumerable<BinaryScoredRow>(scored, reuseRowObject: false).ToList();
        for (int i = 0; i < rows.Count; i++)
        {
            double margin = (double)logits[i][1] - logits[i][0];
            Assert.AreEqual((float)margin, rows[i].Score, $"row {i}");
            Assert.AreEqual((float)(1 / (1 + Math.Exp(-margin))), rows[i].Probability, $"row {i}");
            double softmax1 = Math.Exp(logits[i][1]) / (Math.Exp(logits[i][0]) + Math.Exp(logits[i][1]));
            Assert.AreEqual(softmax1, rows[i].Probability, 1e-6);
            Assert.AreEqual(margin > 0, rows[i].PredictedLabel);
        }
        var metrics = ml.BinaryClassification.Evaluate(scored);
        Assert.AreEqual(rows.Count(r => r.PredictedLabel == r.Label) / 40.0, metrics.Accuracy, 1e-12);
        Assert.IsTrue(metrics.AreaUnderRocCurve is >= 0 and <= 1);
    }

    [TestMethod]
    public void OutputSchemaShape_MatchesTheRuntimeSchema()
    {
        var ml = new MLContext();
        var data = Sst2.Load(ml, Sst2.Train, 20);
        var factory = new TinyFactory();
        var shape = MulticlassPipeline(ml, Options(), factory).GetOutputSchema(SchemaShapeOf(ml, data));
        var score = shape.Single(c => c.Name == "Score");
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.AreEqual(NumberDataViewType.Single, score.ItemType);
        Assert.AreEqual(TextDataViewType.Instance, shape.Last(c => c.Name == "PredictedLabel").ItemType, "after MapKeyToValue");

        var binaryData = Sst2.LoadBinary(ml, Sst2.Train, 20);
        var binaryShape = new LoraTextClassificationTrainer(Options(), ClassificationKind.Binary, factory).GetOutputSchema(SchemaShapeOf(ml, binaryData));
        Assert.AreEqual(NumberDataViewType.Single, binaryShape.Single(c => c.Name == "Score").ItemType);
        Assert.AreEqual(SchemaShape.Column.VectorKind.Scalar, binaryShape.Single(c => c.Name == "Probability").Kind);
        Assert.AreEqual(BooleanDataViewType.Instance, binaryShape.Single(c => c.Name == "PredictedLabel").ItemType);
        Assert.AreEqual(0, factory.Creates, "shape propagation loads no model");
    }

    [TestMethod]
    public void SchemaProblems_FailAtFitBeforeLoadingTheModel()
    {
        var ml = new MLContext();
        var factory = new TinyFactory();
        var textLabel = Sst2.Load(ml, Sst2.Train, 20);

        var e1 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Multiclass(Options(), factory).Fit(textLabel));
        StringAssert.Contains(e1.Message, "'Label'");
        StringAssert.Contains(e1.Message, "Key<UInt32>");
        StringAssert.Contains(e1.Message, "MapValueToKey");

        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(textLabel).Transform(textLabel);
        var options = Options();
        options.Sentence1ColumnName = "Text";
        var e2 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Multiclass(options, factory).Fit(keyed));
        StringAssert.Contains(e2.Message, "'Text'");

        var binary = new LoraTextClassificationTrainer(Options(), ClassificationKind.Binary, factory);
        var e3 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => binary.Fit(keyed));
        StringAssert.Contains(e3.Message, "Boolean");

        options = Options();
        options.Sentence2ColumnName = "Label";   // a key, not text
        var e4 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Multiclass(options, factory).Fit(keyed));
        StringAssert.Contains(e4.Message, "Text");

        var e5 = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => MulticlassPipeline(ml, options, factory).GetOutputSchema(SchemaShapeOf(ml, textLabel)));
        StringAssert.Contains(e5.Message, "'Label'");

        var empty = ml.Data.TakeRows(keyed, 0);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Multiclass(Options(), factory).Fit(empty)).Message, "no rows");

        options = Options();
        options.BaseModel = null;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Multiclass(options, factory).Fit(keyed)).Message, "BaseModel");
        options = Options();
        options.BatchSize = 0;
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Multiclass(options, factory).Fit(keyed));
        Assert.AreEqual(0, factory.Creates);
    }

    [TestMethod]
    public void NullTexts_AreEmptyStrings_LongTextsAreTruncatedAndCounted()
    {
        var ml = new MLContext();
        var rows = Enumerable.Range(0, 24).Select(i => new TextRow
        {
            Sentence1 = i % 3 == 0 ? null : string.Join(' ', Enumerable.Repeat(i % 2 == 0 ? "good" : "bad", i)),
            Label = i % 2 == 0 ? "pos" : "neg",
        }).ToList();
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(rows)).Transform(ml.Data.LoadFromEnumerable(rows));
        var log = new List<string>();
        var options = Options();
        options.MaxSequenceLength = 8;
        options.Log = log.Add;
        var model = Multiclass(options, new TinyFactory()).Fit(data);
        // Texts with more than 7 words (+ BOS) exceed 8 tokens: i = 8..23 with i % 3 != 0 → 11 rows.
        int expected = Enumerable.Range(0, 24).Count(i => i % 3 != 0 && new TextEncoder(model.Scorer.Backend.Tokenizer, 1000, false, 0).Encode(rows[i].Sentence1!, null, out _).Ids.Length > 8);
        Assert.IsTrue(expected > 0);
        Assert.IsTrue(log.Any(l => l.Contains($"{expected} truncated to 8 tokens", StringComparison.Ordinal)), string.Join("\n", log));
        var scored = ml.Data.CreateEnumerable<ScoredKeyRow>(model.Transform(data), reuseRowObject: false).ToList();
        Assert.AreEqual(24, scored.Count);
        Assert.IsTrue(scored.All(r => r.Score.All(float.IsFinite)));
    }

    [TestMethod]
    public void PredictionEngine_MatchesTransform()
    {
        var ml = new MLContext();
        var model = MulticlassPipeline(ml, Options(), new TinyFactory()).Fit(Sst2.Load(ml, Sst2.Train, 96));
        var dev = Sst2.Load(ml, Sst2.Dev, 12);
        var batched = ml.Data.CreateEnumerable<ScoredRow>(model.Transform(dev), reuseRowObject: false).ToList();
        var engine = ml.Model.CreatePredictionEngine<Sst2Row, ScoredRow>(model);
        var inputs = ml.Data.CreateEnumerable<Sst2Row>(dev, reuseRowObject: false).ToList();
        for (int i = 0; i < inputs.Count; i++)
        {
            var single = engine.Predict(inputs[i]);
            Assert.AreEqual(batched[i].PredictedLabel, single.PredictedLabel, $"row {i}");
            for (int c = 0; c < 2; c++) Assert.AreEqual(batched[i].Score[c], single.Score[c], 1e-6, $"row {i} class {c}");
        }
    }

    [TestMethod]
    public void CrossValidate_RunsEveryFold()
    {
        var ml = new MLContext(seed: 3);
        var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(Sst2.Load(ml, Sst2.Train, 90)).Transform(Sst2.Load(ml, Sst2.Train, 90));
        var options = Options();
        options.MaxEpochs = 1;
        var factory = new TinyFactory();
        var folds = ml.MulticlassClassification.CrossValidate(data, Multiclass(options, factory), numberOfFolds: 3);
        Assert.AreEqual(3, folds.Count);
        Assert.AreEqual(3, factory.Creates);
        Assert.IsTrue(folds.All(f => f.Metrics.MicroAccuracy is >= 0 and <= 1 && double.IsFinite(f.Metrics.LogLoss)));
    }

    [TestMethod]
    public void SameSeed_SamePredictions()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 64);
        var dev = Sst2.Load(ml, Sst2.Dev, 16);
        float[][] Scores(int seed) => ml.Data.CreateEnumerable<ScoredRow>(MulticlassPipeline(ml, Options(seed), new TinyFactory()).Fit(train).Transform(dev), false)
            .Select(r => r.Score).ToArray();
        var a = Scores(4);
        var b = Scores(4);
        for (int i = 0; i < a.Length; i++) CollectionAssert.AreEqual(a[i], b[i]);
        CollectionAssert.AreNotEqual(a[0], Scores(5)[0]);
    }

    [TestMethod]
    public void MLNetModelSave_ExplainsThePeftPersistence()
    {
        var ml = new MLContext();
        var data = Sst2.Load(ml, Sst2.Train, 32);
        var options = Options();
        options.MaxEpochs = 1;
        var model = MulticlassPipeline(ml, options, new TinyFactory()).Fit(data);
        var error = Assert.Throws<Exception>(() => ml.Model.Save(model, data.Schema, new MemoryStream()));
        StringAssert.Contains(error.ToString(), "PeftModelPersistence");
    }

    /// <summary>The data-free shape of a schema. Tests only: ML.NET keeps SchemaShape.Create internal (EstimatorChain.Fit calls it).</summary>
    internal static SchemaShape SchemaShapeOf(MLContext ml, IDataView data)
    {
        _ = ml;
        return (SchemaShape)typeof(SchemaShape).GetMethod("Create", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .Invoke(null, [data.Schema])!;
    }
}

internal sealed class ScoredRow
{
    public uint Label { get; set; }

    public float[] Score { get; set; } = [];

    public string PredictedLabel { get; set; } = "";
}

internal sealed class ScoredKeyRow
{
    public float[] Score { get; set; } = [];
}

internal sealed class BinaryScoredRow
{
    public bool Label { get; set; }

    public float Score { get; set; }

    public float Probability { get; set; }

    public bool PredictedLabel { get; set; }
}

internal sealed class TextRow
{
    public string? Sentence1 { get; set; }

    public string Label { get; set; } = "";
}
