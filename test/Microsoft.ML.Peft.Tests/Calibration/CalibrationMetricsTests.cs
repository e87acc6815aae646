using Microsoft.ML.Peft.Calibration;

namespace Microsoft.ML.Peft.Tests.Calibration;

[TestClass]
public sealed class CalibrationMetricsTests
{
    // Four rows, three classes. Top-label confidence / prediction / correct:
    // 0.7 / 0 / yes, 0.6 / 1 / no (label 2), 0.4 / 2 / yes, 0.9 / 1 / yes.
    internal static readonly double[] Probabilities =
    [
        0.7, 0.2, 0.1,
        0.1, 0.6, 0.3,
        0.3, 0.3, 0.4,
        0.05, 0.9, 0.05,
    ];

    internal static readonly int[] Labels = [0, 2, 2, 1];

    [TestMethod]
    public void Ece15_HandComputed_OneRowPerBin_IncludingExactBinBoundaries()
    {
        // 0.6 = 9/15 and 0.4 = 6/15 are upper bin edges: they belong to (8/15, 9/15] and (5/15, 6/15].
        var diagram = ReliabilityDiagram.Compute(Probabilities, 3, Labels);
        Assert.AreEqual(15, diagram.Bins.Count);
        int[] expectedCounts = new int[15];
        expectedCounts[10] = expectedCounts[8] = expectedCounts[5] = expectedCounts[13] = 1;
        CollectionAssert.AreEqual(expectedCounts, diagram.Bins.Select(b => b.Count).ToArray());
        Assert.AreEqual(0.0, diagram.Bins[8].Accuracy);
        Assert.AreEqual(0.6, diagram.Bins[8].MeanConfidence, 1e-15);
        // ECE = ¼(|1 − 0.7| + |0 − 0.6| + |1 − 0.4| + |1 − 0.9|) = 1.6/4.
        Assert.AreEqual(0.4, diagram.ExpectedCalibrationError, 1e-15);
        Assert.AreEqual(0.4, CalibrationMetrics.ExpectedCalibrationError(Probabilities, 3, Labels), 1e-15);
    }

    [TestMethod]
    public void Ece_TwoBins_WeightsEachBinBySize()
    {
        // (0, 0.5]: {0.4 ✓} gap 0.6; (0.5, 1]: {0.6 ✗, 0.7 ✓, 0.9 ✓} acc 2/3, conf 2.2/3 ⇒ gap 0.2/3.
        Assert.AreEqual(0.25 * 0.6 + 0.75 * (0.2 / 3), CalibrationMetrics.ExpectedCalibrationError(Probabilities, 3, Labels, binCount: 2), 1e-15);
    }

    [TestMethod]
    public void AdaptiveEce_EqualMassBins_HandComputed()
    {
        // Sorted confidences 0.4 ✓, 0.6 ✗, 0.7 ✓, 0.9 ✓. M = 3 ⇒ sizes 2, 1, 1:
        // {0.4, 0.6}: acc ½, conf ½ ⇒ 0; {0.7}: 0.3; {0.9}: 0.1 ⇒ ECE = ¼·0.3 + ¼·0.1.
        Assert.AreEqual(0.1, CalibrationMetrics.AdaptiveCalibrationError(Probabilities, 3, Labels, binCount: 3), 1e-15);
        // M = 1 is |overall accuracy − mean confidence| = |¾ − 0.65|.
        Assert.AreEqual(0.1, CalibrationMetrics.AdaptiveCalibrationError(Probabilities, 3, Labels, binCount: 1), 1e-15);
        // M > n: four single-row bins, the same as equal-width with one row per bin.
        Assert.AreEqual(0.4, CalibrationMetrics.AdaptiveCalibrationError(Probabilities, 3, Labels, binCount: 6), 1e-15);
    }

    [TestMethod]
    public void Nll_And_Brier_HandComputed()
    {
        double nll = -(Math.Log(0.7) + Math.Log(0.3) + Math.Log(0.4) + Math.Log(0.9)) / 4;
        Assert.AreEqual(nll, CalibrationMetrics.NegativeLogLikelihood(Probabilities, 3, Labels), 1e-15);
        // Row sums of squared errors 0.14, 0.86, 0.54, 0.015.
        Assert.AreEqual((0.14 + 0.86 + 0.54 + 0.015) / 4, CalibrationMetrics.BrierScore(Probabilities, 3, Labels), 1e-15);
        Assert.AreEqual(double.PositiveInfinity, CalibrationMetrics.NegativeLogLikelihood([1, 0], 2, [1]));
    }

    [TestMethod]
    public void BinaryBrier_IsHalfTheTwoClassMulticlassScore()
    {
        Assert.AreEqual((0.04 + 0.09) / 2, CalibrationMetrics.BrierScoreBinary([0.8, 0.3], [1, 0]), 1e-15);
        Assert.AreEqual(0.13, CalibrationMetrics.BrierScore([0.2, 0.8, 0.7, 0.3], 2, [1, 0]), 1e-15);
    }

    [TestMethod]
    public void ArgmaxTies_PickTheFirstClass()
    {
        // [0.5, 0.5] predicts class 0; with label 1 it is wrong: ECE = |0 − 0.5|.
        Assert.AreEqual(0.5, CalibrationMetrics.ExpectedCalibrationError([0.5, 0.5], 2, [1]), 1e-15);
    }

    [TestMethod]
    public void NllFromLogits_MatchesTheProbabilityPath_AndTemperature()
    {
        double[] logits = [2, 0, -1, 0.5, 1.5, 0.2];
        int[] labels = [0, 2];
        foreach (double t in new[] { 1.0, 0.5, 3.0 })
        {
            double[] p = TemperatureScaling.CalibratedProbabilities(logits, 3, t);
            Assert.AreEqual(CalibrationMetrics.NegativeLogLikelihood(p, 3, labels), CalibrationMetrics.NegativeLogLikelihoodFromLogits(logits, 3, labels, t), 1e-14);
        }
        // Huge logits do not overflow: NLL of softmax([1000, 0]) for label 1 is 1000.
        Assert.AreEqual(1000, CalibrationMetrics.NegativeLogLikelihoodFromLogits([1000, 0], 2, [1]), 1e-12);
    }

    [TestMethod]
    public void BadInput_NamesTheRow()
    {
        var sum = Assert.ThrowsExactly<ArgumentException>(() => CalibrationMetrics.BrierScore([0.5, 0.4, 0.2, 0.8], 2, [0, 1]));
        StringAssert.Contains(sum.Message, "row 0");
        var label = Assert.ThrowsExactly<ArgumentException>(() => CalibrationMetrics.NegativeLogLikelihood([0.5, 0.5], 2, [2]));
        StringAssert.Contains(label.Message, "row 0");
        var nan = Assert.ThrowsExactly<ArgumentException>(() => CalibrationMetrics.ExpectedCalibrationError([0.5, 0.5, double.NaN, 1], 2, [0, 0]));
        StringAssert.Contains(nan.Message, "row 1, class 0");
        Assert.ThrowsExactly<ArgumentException>(() => CalibrationMetrics.BrierScore([0.5, 0.5], 2, [0, 1]));
        Assert.ThrowsExactly<ArgumentException>(() => CalibrationMetrics.BrierScoreBinary([0.5], [2]));
    }
}
