using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.StandIn.Tests.Metrics;

/// <summary>
/// Pins ML.NET's binary metric definitions on 7 rows (an 8th with a NaN score is skipped), computed by hand.
///
/// row score label prob      predicted(score&gt;0)
///  1   2.0   +    .9        +   TP
///  2   1.0   −    .7        +   FP
///  3   0.5   +    .6        +   TP
///  4  −0.5   −    .3        −   TN
///  5  −1.0   +    .2        −   FN
///  6   1.0   +    .7        +   TP   (ties row 2's score)
///  7  −2.0   −    .1        −   TN
/// TP=3 FP=1 FN=1 TN=2: Accuracy 5/7, PositivePrecision 3/4, PositiveRecall 3/4, NegativePrecision 2/3, NegativeRecall 2/3, F1 3/4.
/// AUC: negatives at 1.0, −0.5, −2.0 have 1 + ½ (tie), 3, 4 positives above them: 8.5/12.
/// AUPRC (descending score, ties in input order: +, −, +, +, −, +, −), lower trapezoid:
///   ¼·(1+1)/2 + ¼·(½+⅔)/2 + ¼·(⅔+¾)/2 + ¼·(⅗+⅔)/2 = 351/480.
/// LogLoss (bits, float32 probabilities) = [−log2 .9 − log2 .6 − log2 .2 − log2 .7 − log2 .3 − log2 .7 − log2 .9]/7 = 0.87557310990876824;
/// Entropy = H2(4/7) = 0.98522813603425152; LogLossReduction = (H − LL)/H = 0.11129912160940471.
/// </summary>
[TestClass]
public sealed class BinaryMetricsTests
{
    private sealed class Scored
    {
        public float Score { get; set; }

        public bool Label { get; set; }

        public float Probability { get; set; }

        public bool PredictedLabel { get; set; }
    }

    private static IDataView Data(MLContext ml) => ml.Data.LoadFromEnumerable(new[]
    {
        new Scored { Score = 2.0f, Label = true, Probability = .9f },
        new Scored { Score = 1.0f, Label = false, Probability = .7f },
        new Scored { Score = 0.5f, Label = true, Probability = .6f },
        new Scored { Score = -0.5f, Label = false, Probability = .3f },
        new Scored { Score = -1.0f, Label = true, Probability = .2f },
        new Scored { Score = 1.0f, Label = true, Probability = .7f },
        new Scored { Score = -2.0f, Label = false, Probability = .1f },
        new Scored { Score = float.NaN, Label = true, Probability = .5f },
    });

    [TestMethod]
    public void CalibratedMetricsMatchHandComputedValues()
    {
        var ml = new MLContext(1);
        var m = ml.BinaryClassification.Evaluate(Data(ml));
        Assert.AreEqual(5.0 / 7, m.Accuracy, 1e-15);
        Assert.AreEqual(0.75, m.PositivePrecision, 1e-15);
        Assert.AreEqual(0.75, m.PositiveRecall, 1e-15);
        Assert.AreEqual(2.0 / 3, m.NegativePrecision, 1e-15);
        Assert.AreEqual(2.0 / 3, m.NegativeRecall, 1e-15);
        Assert.AreEqual(0.75, m.F1Score, 1e-15);
        Assert.AreEqual(8.5 / 12, m.AreaUnderRocCurve, 1e-15);
        Assert.AreEqual(351.0 / 480, m.AreaUnderPrecisionRecallCurve, 1e-15);
        Assert.AreEqual(0.87557310990876824, m.LogLoss, 1e-14);
        Assert.AreEqual(0.98522813603425152, m.Entropy, 1e-14);
        Assert.AreEqual(0.11129912160940471, m.LogLossReduction, 1e-13);
        CollectionAssert.AreEqual(new double[] { 3, 1 }, m.ConfusionMatrix.Counts[0].ToArray());
        CollectionAssert.AreEqual(new double[] { 1, 2 }, m.ConfusionMatrix.Counts[1].ToArray());
    }

    [TestMethod]
    public void NonCalibratedMetricsNeedNoProbability()
    {
        var ml = new MLContext(1);
        var m = ml.BinaryClassification.EvaluateNonCalibrated(Data(ml));
        Assert.IsNotInstanceOfType<CalibratedBinaryClassificationMetrics>(m);
        Assert.AreEqual(8.5 / 12, m.AreaUnderRocCurve, 1e-15);
        Assert.AreEqual(5.0 / 7, m.Accuracy, 1e-15);
    }

    [TestMethod]
    public void FormattedConfusionTableMatchesMLNetLayout()
    {
        var ml = new MLContext(1);
        string expected = string.Join(Environment.NewLine,
            "TEST POSITIVE RATIO:\t0.5714 (4.0/(4.0+3.0))",
            "Confusion table",
            "          ||======================",
            "PREDICTED || positive | negative | Recall",
            "TRUTH     ||======================",
            " positive ||        3 |        1 | 0.7500",
            " negative ||        1 |        2 | 0.6667",
            "          ||======================",
            "Precision ||   0.7500 |   0.6667 |",
            "");
        Assert.AreEqual(expected, ml.BinaryClassification.Evaluate(Data(ml)).ConfusionMatrix.GetFormattedConfusionTable());
    }

    [TestMethod]
    public void AllTiedScoresGiveHalfAuc()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[]
        {
            new Scored { Score = 0.3f, Label = true, Probability = .5f },
            new Scored { Score = 0.3f, Label = false, Probability = .5f },
            new Scored { Score = 0.3f, Label = true, Probability = .5f },
        });
        var m = ml.BinaryClassification.Evaluate(data);
        Assert.AreEqual(0.5, m.AreaUnderRocCurve, 1e-15);
        // −log2(.5) = 1 bit for every row; entropy of 2/3 is H2(2/3) = 0.9182958340544896.
        Assert.AreEqual(1.0, m.LogLoss, 1e-15);
        Assert.AreEqual(0.91829583405448956, m.Entropy, 1e-14);
    }
}
