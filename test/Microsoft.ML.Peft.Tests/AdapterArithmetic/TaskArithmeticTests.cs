using Microsoft.ML.Peft.AdapterArithmetic;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.AdapterArithmetic;

[TestClass]
public sealed class TaskArithmeticTests
{
    private static readonly float[][] Tasks = [[1f, -2f, 3f, 0.5f], [-1f, -1f, 2f, 4f], [2f, 1f, -9f, 0.1f]];
    private static readonly double[] Weights = [1, 0.5, 2];

    /// <summary>
    /// By hand, density 0.5 keeps 2 of 4 per tensor: [0, −2, 3, 0], [0, 0, 2, 4], [2, 0, −9, 0]. Element 2: the total
    /// 3 + 2 − 9 = −4 elects "−" (only the third agrees: 2·(−9) = −18), while the frequency vote (2 against 1) elects
    /// "+" ((1·3 + 0.5·2) / 2 = 2). Elements 0, 1, 3 have one agreeing tensor each: 2·2, 1·(−2), 0.5·4.
    /// </summary>
    [TestMethod]
    public void Ties_TrimsElectsAndAveragesTheAgreeingValues()
    {
        CollectionAssert.AreEqual(new[] { 4f, -2f, -18f, 2f }, TaskArithmetic.Ties(Tasks, Weights, 0.5, MajoritySignMethod.Total));
        CollectionAssert.AreEqual(new[] { 4f, -2f, 2f, 2f }, TaskArithmetic.Ties(Tasks, Weights, 0.5, MajoritySignMethod.Frequency));
    }

    [TestMethod]
    public void WeightedSumAndMagnitudePruning_MatchHandValues()
    {
        CollectionAssert.AreEqual(new[] { 4.5f, -0.5f, -14f, 2.7f }, TaskArithmetic.WeightedSum(Tasks, Weights));
        CollectionAssert.AreEqual(new[] { 0f, -3f, 2f, 0f }, TaskArithmetic.MagnitudePrune([1f, -3f, 2f, -0.5f], 0.5));
        CollectionAssert.AreEqual(new[] { 0f, -3f, 0f, 0f }, TaskArithmetic.MagnitudePrune([1f, -3f, 2f, -0.5f], 0.25));
        CollectionAssert.AreEqual(new[] { 1f, -3f, 2f, -0.5f }, TaskArithmetic.MagnitudePrune([1f, -3f, 2f, -0.5f], 1));
        CollectionAssert.AreEqual(new[] { 0f, 0f, 0f, 0f }, TaskArithmetic.MagnitudePrune([1f, -3f, 2f, -0.5f], 0));
        // Magnitude pruning then the weighted sum: [0,−2,3,0] + 0.5·[0,0,2,4] + 2·[2,0,−9,0].
        CollectionAssert.AreEqual(new[] { 4f, -2f, -14f, 2f }, TaskArithmetic.MagnitudePruneSum(Tasks, Weights, 0.5));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => TaskArithmetic.MagnitudePrune([1f], -0.1));
        Assert.ThrowsExactly<ArgumentException>(() => TaskArithmetic.WeightedSum(Tasks, [1.0]));
    }

    /// <summary>
    /// DARE keeps each value with probability p and divides it by p: over 20,000 ones the kept fraction is p and the
    /// mean stays 1, within 4 standard deviations (√(p(1−p)/n) and √((1−p)/(pn))).
    /// </summary>
    [TestMethod]
    public void RandomPrune_WithRescaling_IsUnbiased()
    {
        const int n = 20_000;
        const double p = 0.3;
        var pruned = TaskArithmetic.RandomPrune(Enumerable.Repeat(1f, n).ToArray(), p, rescale: true, new Generator(4));
        Assert.IsTrue(pruned.All(x => x == 0f || x == (float)(1 / p)));
        double kept = pruned.Count(x => x != 0) / (double)n;
        Assert.AreEqual(p, kept, 4 * Math.Sqrt(p * (1 - p) / n));
        Assert.AreEqual(1.0, pruned.Average(x => (double)x), 4 * Math.Sqrt((1 - p) / (p * n)));
        // Density 1 keeps everything, so DARE-linear is the weighted sum and DARE-TIES is TIES without trimming.
        CollectionAssert.AreEqual(TaskArithmetic.WeightedSum(Tasks, Weights), TaskArithmetic.DareLinear(Tasks, Weights, 1, new Generator(1)));
        CollectionAssert.AreEqual(TaskArithmetic.Ties(Tasks, Weights, 1, MajoritySignMethod.Total), TaskArithmetic.DareTies(Tasks, Weights, 1, MajoritySignMethod.Total, new Generator(1)));
    }
}
