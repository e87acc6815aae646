using Microsoft.ML.Peft.AutoML;

namespace Microsoft.ML.Peft.Tests.AutoML;

/// <summary>Spearman's ρ against values computed by hand (ranks, then Pearson on the ranks).</summary>
[TestClass]
public sealed class RankCorrelationTests
{
    [TestMethod]
    public void NoTies_MatchesTheSquaredRankDifferenceFormula()
    {
        // ranks of y: 2 1 4 3 5; d = −1 1 −1 1 0; Σd² = 4; ρ = 1 − 6·4/(5·(25−1)) = 0.8.
        Assert.AreEqual(0.8, RankCorrelation.Spearman([10, 20, 30, 40, 50], [0.2, 0.1, 0.4, 0.3, 0.5]), 1e-15);
    }

    [TestMethod]
    public void Ties_ShareTheirMeanRank()
    {
        // y = 5 6 7 8 7 → ranks 1 2 3.5 5 3.5. Centred: x −2 −1 0 1 2, y −2 −1 0.5 2 0.5;
        // Σxy = 4 + 1 + 0 + 2 + 1 = 8, Σx² = 10, Σy² = 4 + 1 + 0.25 + 4 + 0.25 = 9.5; ρ = 8/√95.
        CollectionAssert.AreEqual(new[] { 1, 2, 3.5, 5, 3.5 }, RankCorrelation.AverageRanks([5, 6, 7, 8, 7]));
        Assert.AreEqual(8 / Math.Sqrt(95), RankCorrelation.Spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]), 1e-15);
        // Ties on both sides: x ranks 1.5 1.5 3 4, y ranks 1 2.5 2.5 4; centred x −1 −1 0.5 1.5, y −1.5 0 0 1.5;
        // Σxy = 1.5 + 0 + 0 + 2.25 = 3.75, Σx² = 1 + 1 + 0.25 + 2.25 = 4.5, Σy² = 2.25 + 0 + 0 + 2.25 = 4.5; ρ = 3.75/4.5.
        Assert.AreEqual(3.75 / 4.5, RankCorrelation.Spearman([1, 1, 2, 3], [10, 20, 20, 30]), 1e-15);
    }

    [TestMethod]
    public void MonotoneTransformsGivePlusOrMinusOne()
    {
        Assert.AreEqual(1.0, RankCorrelation.Spearman([1, 2, 3, 4], [1, 8, 27, 64]), 1e-15);
        Assert.AreEqual(-1.0, RankCorrelation.Spearman([-3, -1, 0.5, 7], [100, 10, 1, 0.1]), 1e-15);
    }

    [TestMethod]
    public void ConstantSampleIsUndefined_BadInputThrows()
    {
        Assert.IsTrue(double.IsNaN(RankCorrelation.Spearman([1, 2, 3], [4, 4, 4])));
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => RankCorrelation.Spearman([1, 2, 3], [1, 2])).Message, "3 and 2 values");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => RankCorrelation.Spearman([1], [1])).Message, "at least 2");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => RankCorrelation.Spearman([1, double.NaN], [1, 2])).Message, "value 1 is NaN");
    }
}
