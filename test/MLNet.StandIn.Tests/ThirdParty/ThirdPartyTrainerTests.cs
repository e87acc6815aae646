using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.ThirdParty;

/// <summary>
/// The pattern Microsoft.ML.Peft follows: MapValueToKey → third-party trainer → MapKeyToValue, with Evaluate and a
/// PredictionEngine, using only public API in the trainer.
/// </summary>
[TestClass]
public sealed class ThirdPartyTrainerTests
{
    private sealed class Example
    {
        public string Label { get; set; } = "";

        [VectorType(1)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";

        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private static Example E(string label, float x) => new() { Label = label, Features = new[] { x } };

    // Centroids: red 0, green 2, blue 4 (keys 1, 2, 3 in order of first occurrence).
    private static readonly Example[] Train = { E("red", -1), E("green", 1), E("blue", 3), E("red", 1), E("green", 3), E("blue", 5) };

    private static EstimatorChain<Microsoft.ML.Transforms.KeyToValueMappingTransformer> Pipeline(MLContext ml)
        => ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(new NearestCentroidTrainer())
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

    [TestMethod]
    public void OutputShapeComesFromPublicEstimators()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Train);
        var labelShape = ml.Transforms.Conversion.MapValueToKey("Label").GetOutputSchema(SchemaShape.Create(data.Schema));
        var shape = new NearestCentroidTrainer().GetOutputSchema(labelShape);

        var score = shape.Single(c => c.Name == "Score");
        Assert.AreEqual(SchemaShape.Column.VectorKind.Vector, score.Kind);
        Assert.AreEqual(NumberDataViewType.Single, score.ItemType);
        Assert.IsFalse(score.IsKey);
        var predicted = shape.Single(c => c.Name == "PredictedLabel");
        Assert.IsTrue(predicted.IsKey);
        Assert.IsTrue(predicted.Annotations.Any(a => a.Name == "KeyValues"));
        // ... which is exactly what MapKeyToValue requires downstream.
        var final = ml.Transforms.Conversion.MapKeyToValue("PredictedLabel").GetOutputSchema(shape);
        Assert.AreEqual(TextDataViewType.Instance, final.Single(c => c.Name == "PredictedLabel").ItemType);
    }

    /// <summary>
    /// Test points 0 (red), 2 (green), 3 (blue). Negative squared distances to the centroids 0, 2, 4:
    /// x=0: [0, −4, −16]; x=2: [−4, 0, −4]; x=3: [−9, −1, −1] (green/blue tie → green, the lower index: wrong).
    /// −ln p(true) = ln(1 + e^−4 + e^−16), ln(1 + 2e^−4), ln(2 + e^−8) → LogLoss = 0.24914707866188759 (up to float32
    /// rounding of the probabilities); prior entropy ln 3 → reduction 0.77321655580246762. Micro = Macro = 2/3.
    /// </summary>
    [TestMethod]
    public void FitEvaluateAndPredictThroughThePipeline()
    {
        var ml = new MLContext(1);
        var model = Pipeline(ml).Fit(ml.Data.LoadFromEnumerable(Train));
        var test = ml.Data.LoadFromEnumerable(new[] { E("red", 0), E("green", 2), E("blue", 3) });
        var scored = model.Transform(test);

        var metrics = ml.MulticlassClassification.Evaluate(scored);
        Assert.AreEqual(2.0 / 3, metrics.MicroAccuracy, 1e-15);
        Assert.AreEqual(2.0 / 3, metrics.MacroAccuracy, 1e-15);
        Assert.AreEqual(0.24914707866188759, metrics.LogLoss, 1e-7);
        Assert.AreEqual(0.77321655580246762, metrics.LogLossReduction, 1e-7);
        StringAssert.Contains(metrics.ConfusionMatrix.GetFormattedConfusionTable(), "PREDICTED ||   red | green |  blue | Recall");

        var predictions = ml.Data.CreateEnumerable<Prediction>(scored, reuseRowObject: false).ToList();
        CollectionAssert.AreEqual(new[] { "red", "green", "green" }, predictions.Select(p => p.PredictedLabel).ToArray());

        using var engine = ml.Model.CreatePredictionEngine<Example, Prediction>(model);
        var prediction = engine.Predict(E("", 4.2f));
        Assert.AreEqual("blue", prediction.PredictedLabel);
        Assert.AreEqual(3, prediction.Score.Length);
        Assert.AreEqual(1.0, prediction.Score.Sum(), 1e-6);
        // Reusing the output object refills it.
        var reused = new Prediction();
        engine.Predict(E("", -0.5f), ref reused);
        Assert.AreEqual("red", reused.PredictedLabel);
    }

    [TestMethod]
    public void ThirdPartyModelsCannotBeSavedThroughModelSave()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(Train);
        var model = Pipeline(ml).Fit(data);
        using var stream = new MemoryStream();
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => ml.Model.Save(model, data.Schema, stream));
        Assert.AreEqual("ModelSignature not specified!", error.Message);
    }

    [TestMethod]
    public void CrossValidateRunsTheThirdPartyPipelinePerFold()
    {
        var ml = new MLContext(1);
        var rows = Enumerable.Range(0, 60).Select(i => E(new[] { "red", "green", "blue" }[i % 3], (i % 3) * 10 + (i % 5) * 0.1f)).ToArray();
        var results = ml.MulticlassClassification.CrossValidate(ml.Data.LoadFromEnumerable(rows), Pipeline(ml), numberOfFolds: 3, seed: 5);
        Assert.AreEqual(3, results.Count);
        CollectionAssert.AreEqual(new[] { 0, 1, 2 }, results.Select(r => r.Fold).ToArray());
        foreach (var result in results)
            Assert.AreEqual(1.0, result.Metrics.MicroAccuracy, 1e-15, "clusters 10 apart are always separable");
    }
}
