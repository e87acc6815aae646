using Microsoft.ML;

namespace MLNet.StandIn.Tests.Metrics;

/// <summary>
/// labels 1 2 3 4, scores 1.5 2 2 5 (a 5th row with a NaN label is skipped): errors −.5 0 1 −1.
/// MAE = 2.5/4 = .625, MSE = 2.25/4 = .5625, RMSE = .75, Loss (squared) = .5625,
/// SST = Σ(y − 2.5)² = 5 → R² = 1 − 2.25/5 = .55.
/// </summary>
[TestClass]
public sealed class RegressionMetricsTests
{
    private sealed class Scored
    {
        public float Label { get; set; }

        public float Score { get; set; }
    }

    [TestMethod]
    public void MetricsMatchHandComputedValues()
    {
        var ml = new MLContext(1);
        var data = ml.Data.LoadFromEnumerable(new[]
        {
            new Scored { Label = 1, Score = 1.5f },
            new Scored { Label = 2, Score = 2 },
            new Scored { Label = 3, Score = 2 },
            new Scored { Label = 4, Score = 5 },
            new Scored { Label = float.NaN, Score = 7 },
        });
        var m = ml.Regression.Evaluate(data);
        Assert.AreEqual(0.625, m.MeanAbsoluteError, 1e-15);
        Assert.AreEqual(0.5625, m.MeanSquaredError, 1e-15);
        Assert.AreEqual(0.75, m.RootMeanSquaredError, 1e-15);
        Assert.AreEqual(0.5625, m.LossFunction, 1e-15);
        Assert.AreEqual(0.55, m.RSquared, 1e-15);
    }
}
