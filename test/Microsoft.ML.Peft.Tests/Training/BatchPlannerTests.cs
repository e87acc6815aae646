using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Training;

[TestClass]
public sealed class BatchPlannerTests
{
    private static readonly int[] Lengths = Enumerable.Range(0, 1000).Select(i => (i * 7919) % 61 + 1).ToArray();

    [TestMethod]
    [DataRow(BatchOrder.Shuffled)]
    [DataRow(BatchOrder.LengthGrouped)]
    public void EveryRowOncePerEpoch_SameForSameSeed_DifferentAcrossEpochs(BatchOrder order)
    {
        var plan = BatchPlanner.Plan(Lengths, 32, order, seed: 5, epoch: 0);
        Assert.AreEqual(32, plan.Length);  // ceil(1000 / 32)
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 1000).ToArray(), plan.SelectMany(b => b).ToArray());
        Assert.AreEqual(1000 - 31 * 32, plan.Single(b => b.Length != 32).Length);
        var again = BatchPlanner.Plan(Lengths, 32, order, seed: 5, epoch: 0);
        CollectionAssert.AreEqual(plan.SelectMany(b => b).ToArray(), again.SelectMany(b => b).ToArray());
        var next = BatchPlanner.Plan(Lengths, 32, order, seed: 5, epoch: 1);
        CollectionAssert.AreNotEqual(plan.SelectMany(b => b).ToArray(), next.SelectMany(b => b).ToArray());
        var otherSeed = BatchPlanner.Plan(Lengths, 32, order, seed: 6, epoch: 0);
        CollectionAssert.AreNotEqual(plan.SelectMany(b => b).ToArray(), otherSeed.SelectMany(b => b).ToArray());
    }

    [TestMethod]
    public void LengthGrouped_BatchesHoldNeighboursInLength()
    {
        // Each full mega-batch (50 × 8 = 400 rows) is sorted by length and cut, so a batch's lengths span a narrow
        // band; random batches span most of 1..61.
        var grouped = BatchPlanner.Plan(Lengths, 8, BatchOrder.LengthGrouped, seed: 1, epoch: 0);
        var shuffled = BatchPlanner.Plan(Lengths, 8, BatchOrder.Shuffled, seed: 1, epoch: 0);
        double Spread(int[][] plan) => plan.Average(b => b.Max(r => Lengths[r]) - b.Min(r => Lengths[r]));
        Assert.IsTrue(Spread(grouped) < 3, $"grouped spread {Spread(grouped)}");
        Assert.IsTrue(Spread(shuffled) > 30, $"shuffled spread {Spread(shuffled)}");
        foreach (var batch in grouped)
            CollectionAssert.AreEqual(batch.OrderByDescending(r => Lengths[r]).Select(r => Lengths[r]).ToArray(), batch.Select(r => Lengths[r]).ToArray());
    }

    [TestMethod]
    public void Permutation_IsUniformEnough()
    {
        // 3 elements: each of the 6 permutations should appear ~1/6 of 60,000 draws (binomial sd ≈ 91).
        var g = new Microsoft.ML.Peft.Tensors.Generator(9);
        var counts = new Dictionary<string, int>();
        for (int i = 0; i < 60000; i++)
        {
            string key = string.Join(",", BatchPlanner.Permutation(3, g));
            counts[key] = counts.GetValueOrDefault(key) + 1;
        }
        Assert.AreEqual(6, counts.Count);
        foreach (var (key, n) in counts) Assert.AreEqual(10000, n, 500, key);
    }
}
