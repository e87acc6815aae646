using Microsoft.ML.Peft.Calibration;

namespace Microsoft.ML.Peft.Tests.Calibration;

[TestClass]
public sealed class TemperatureScalingTests
{
    [TestMethod]
    public void HandComputed_TwoClasses()
    {
        // Logits (0, 1) everywhere, 3 of 4 labels are class 1: the optimum has σ(β) = ¾, so β = ln 3 and T = 1/ln 3.
        double[] logits = [0, 1, 0, 1, 0, 1, 0, 1];
        Assert.AreEqual(1 / Math.Log(3), TemperatureScaling.Fit(logits, 2, [1, 1, 1, 0]), 1e-12);
        Assert.AreEqual(1 / Math.Log(3), TemperatureScaling.Fit(logits.Select(x => (float)x).ToArray(), 2, [1, 1, 1, 0]), 1e-12);
    }

    [TestMethod]
    public void RecoversAKnownTemperature_OnSyntheticOverconfidentLogits()
    {
        // True logits z*, labels drawn from softmax(z*), model logits z = 2.5·z*: the NLL-optimal T is ≈ 2.5
        // (exactly 2.5 in the infinite-data limit; n = 20 000 gives a standard error of about 1 %).
        const int n = 20_000, c = 5;
        const double trueT = 2.5;
        var random = new Random(12);
        var logits = new double[n * c];
        var labels = new int[n];
        var p = new double[c];
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int k = 0; k < c; k++)
            {
                double u1 = 1 - random.NextDouble(), u2 = random.NextDouble();
                double z = 2 * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
                logits[i * c + k] = trueT * z;
                sum += p[k] = Math.Exp(z);
            }
            double u = random.NextDouble() * sum;
            int label = 0;
            while (label < c - 1 && (u -= p[label]) > 0) label++;
            labels[i] = label;
        }
        double fitted = TemperatureScaling.Fit(logits, c, labels);
        Assert.AreEqual(trueT, fitted, 0.1);
        // The fit is the exact minimiser: nearby temperatures are worse.
        double best = CalibrationMetrics.NegativeLogLikelihoodFromLogits(logits, c, labels, fitted);
        Assert.IsTrue(best < CalibrationMetrics.NegativeLogLikelihoodFromLogits(logits, c, labels, fitted * 1.001));
        Assert.IsTrue(best < CalibrationMetrics.NegativeLogLikelihoodFromLogits(logits, c, labels, fitted / 1.001));
        Assert.IsTrue(best < CalibrationMetrics.NegativeLogLikelihoodFromLogits(logits, c, labels, 1.0), "scaling must help");
    }

    [TestMethod]
    public void OptimaOutsideTheBounds_ReturnTheNearerBound()
    {
        // Every prediction right: sharper is always better ⇒ T → 0, clamped to the minimum.
        Assert.AreEqual(0.01, TemperatureScaling.Fit([3, 0, 0, 3], 2, [0, 1]));
        // Every prediction wrong: flatter is always better ⇒ T → ∞, clamped to the maximum.
        Assert.AreEqual(100, TemperatureScaling.Fit([3, 0, 0, 3], 2, [1, 0]));
    }

    [TestMethod]
    public void BadInput_IsRejected()
    {
        var ex = Assert.ThrowsExactly<ArgumentException>(() => TemperatureScaling.Fit([0, double.PositiveInfinity], 2, [0]));
        StringAssert.Contains(ex.Message, "row 0, class 1");
        Assert.ThrowsExactly<ArgumentException>(() => TemperatureScaling.Fit([0, 1, 2], 2, [0]));
        Assert.ThrowsExactly<ArgumentException>(() => TemperatureScaling.Fit([0, 1], 2, [0], minTemperature: 2, maxTemperature: 1));
    }
}
