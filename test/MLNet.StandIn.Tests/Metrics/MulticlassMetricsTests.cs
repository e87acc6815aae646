using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Metrics;

/// <summary>
/// Pins ML.NET's multiclass metric definitions on a 7-row, 3-class example computed by hand.
/// Scores are float32; log-losses below are −ln of the float32 value widened to double.
///
/// row  label  scores              argmax  rank(true)  −ln p(true)
///  1     0    .7  .2  .1            0        0        −ln .7            = 0.356674960968631
///  2     0    .3  .6  .1            1        1        −ln .3            = 1.203972764589507
///  3     1    .1  .8  .1            1        0        −ln .8            = 0.223143536413049
///  4     2    .5  .25 .25           0        2        −ln .25           = 1.386294361119891  (tie with class 1 counts: lower index)
///  5     2    0   0   1             2        0        −ln 1             = 0
///  6     1    1   0   0             0        1        −ln 1e-15f        = 34.538776391283193 (p clamped)
///  7     2    .2  .3  .5            2        0        −ln .5            = 0.693147180559945
///  8  key 0 (missing label)                                                skipped
///
/// Micro = 4/7; per-class recall 1/2, 1/2, 2/3 → Macro = 5/9; LogLoss = Σ/7 = 5.4860013135620305.
/// Prior entropy H = −(2/7 ln 2/7 · 2 + 3/7 ln 3/7) = 1.0789922078775833 → LogLossReduction = (H − LL)/H = −4.084375284185966.
/// Top-1 = 4/7, top-2 = 6/7, top-3 = 7/7.
/// Confusion (actual × predicted): [1 1 0; 1 1 0; 1 0 2] → precision 1/3, 1/2, 1; recall 1/2, 1/2, 2/3.
/// </summary>
[TestClass]
public sealed class MulticlassMetricsTests
{
    private sealed class Scored
    {
        [KeyType(3)]
        public uint Label { get; set; }

        [VectorType(3)]
        public float[] Score { get; set; } = Array.Empty<float>();

        [KeyType(3)]
        public uint PredictedLabel { get; set; }
    }

    private static IDataView Data(MLContext ml)
    {
        var rows = new (uint Key, float[] Scores)[]
        {
            (1, new[] { .7f, .2f, .1f }),
            (1, new[] { .3f, .6f, .1f }),
            (2, new[] { .1f, .8f, .1f }),
            (3, new[] { .5f, .25f, .25f }),
            (3, new[] { 0f, 0f, 1f }),
            (2, new[] { 1f, 0f, 0f }),
            (3, new[] { .2f, .3f, .5f }),
            (0, new[] { .9f, .05f, .05f }),
        };
        return ml.Data.LoadFromEnumerable(rows.Select(r => new Scored { Label = r.Key, Score = r.Scores, PredictedLabel = 1 }).ToList());
    }

    [TestMethod]
    public void MetricsMatchHandComputedValues()
    {
        var ml = new MLContext(1);
        var m = ml.MulticlassClassification.Evaluate(Data(ml), topKPredictionCount: 3);

        Assert.AreEqual(4.0 / 7, m.MicroAccuracy, 1e-15);
        Assert.AreEqual(5.0 / 9, m.MacroAccuracy, 1e-15);
        Assert.AreEqual(5.4860013135620305, m.LogLoss, 1e-13);
        Assert.AreEqual(-4.084375284185966, m.LogLossReduction, 1e-12);
        Assert.AreEqual(3, m.TopKPredictionCount);
        CollectionAssert.AreEqual(new[] { 4.0 / 7, 6.0 / 7, 1.0 }, m.TopKAccuracyForAllK!.ToArray());
        Assert.AreEqual(1.0, m.TopKAccuracy, 1e-15);
        Assert.AreEqual(0.78032386277906896, m.PerClassLogLoss[0], 1e-14);
        Assert.AreEqual(17.38095996384812, m.PerClassLogLoss[1], 1e-12);
        Assert.AreEqual(0.69314718055994529, m.PerClassLogLoss[2], 1e-14);

        var cm = m.ConfusionMatrix;
        Assert.AreEqual(3, cm.NumberOfClasses);
        CollectionAssert.AreEqual(new double[] { 1, 1, 0 }, cm.Counts[0].ToArray());
        CollectionAssert.AreEqual(new double[] { 1, 1, 0 }, cm.Counts[1].ToArray());
        CollectionAssert.AreEqual(new double[] { 1, 0, 2 }, cm.Counts[2].ToArray());
        Assert.AreEqual(1.0 / 3, cm.PerClassPrecision[0], 1e-15);
        Assert.AreEqual(0.5, cm.PerClassPrecision[1], 1e-15);
        Assert.AreEqual(1.0, cm.PerClassPrecision[2], 1e-15);
        Assert.AreEqual(2.0 / 3, cm.PerClassRecall[2], 1e-15);
        Assert.AreEqual(1.0, cm.GetCountForClassPair(predictedClassIndicatorIndex: 0, actualClassIndicatorIndex: 2));
        Assert.AreEqual(0.0, cm.GetCountForClassPair(predictedClassIndicatorIndex: 2, actualClassIndicatorIndex: 0));
    }

    [TestMethod]
    public void TopKIsNullWhenNotRequested()
    {
        var ml = new MLContext(1);
        var m = ml.MulticlassClassification.Evaluate(Data(ml));
        Assert.AreEqual(0, m.TopKPredictionCount);
        Assert.IsNull(m.TopKAccuracyForAllK);
        Assert.AreEqual(0.0, m.TopKAccuracy);
    }

    [TestMethod]
    public void FormattedConfusionTableMatchesMLNetLayout()
    {
        var ml = new MLContext(1);
        var table = ml.MulticlassClassification.Evaluate(Data(ml)).ConfusionMatrix.GetFormattedConfusionTable();
        string expected = string.Join(Environment.NewLine,
            "",
            "Confusion table",
            "          ||========================",
            "PREDICTED ||     0 |     1 |     2 | Recall",
            "TRUTH     ||========================",
            "        0 ||     1 |     1 |     0 | 0.5000",
            "        1 ||     1 |     1 |     0 | 0.5000",
            "        2 ||     1 |     0 |     2 | 0.6667",
            "          ||========================",
            "Precision ||0.3333 |0.5000 |1.0000 |",
            "");
        Assert.AreEqual(expected, table);
    }

    [TestMethod]
    public void ClassNamesComeFromScoreSlotNames()
    {
        // Names longer than the 5-character column switch the header to class indices, as ML.NET does.
        var ml = new MLContext(1);
        var data = Data(ml);
        var names = new VBuffer<ReadOnlyMemory<char>>(3, new[] { "alpha".AsMemory(), "b".AsMemory(), "gamma-long".AsMemory() });
        var annotations = new DataViewSchema.Annotations.Builder();
        annotations.Add("SlotNames", new VectorDataViewType(TextDataViewType.Instance, 3),
            (ref VBuffer<ReadOnlyMemory<char>> dst) => names.CopyTo(ref dst));
        var builder = new DataViewSchema.Builder();
        foreach (var c in data.Schema)
            builder.AddColumn(c.Name, c.Type, c.Name == "Score" ? annotations.ToAnnotations() : c.Annotations);
        var rows = ml.Data.CreateEnumerable<Scored>(data, reuseRowObject: false).ToList();
        var withNames = ml.Data.LoadFromEnumerable(rows, builder.ToSchema());

        var table = ml.MulticlassClassification.Evaluate(withNames).ConfusionMatrix.GetFormattedConfusionTable();
        StringAssert.Contains(table, "PREDICTED     ||     0 |     1 |     2 | Recall"); // padding = max(9, 10 + 3)
        StringAssert.Contains(table, "0.      alpha ||     1 |     1 |     0 | 0.5000");
        StringAssert.Contains(table, "2. gamma-long ||     1 |     0 |     2 | 0.6667");
    }

    [TestMethod]
    public void BadColumnsFailWithClearMessages()
    {
        var ml = new MLContext(1);
        var data = Data(ml);
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Evaluate(data, scoreColumnName: "Nope"));
        StringAssert.Contains(missing.Message, "Could not find score column 'Nope'");
        var wrongType = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Evaluate(data, scoreColumnName: "Label"));
        StringAssert.Contains(wrongType.Message, "Score column 'Label'");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.MulticlassClassification.Evaluate(data, predictedLabelColumnName: "Missing"));
    }
}
