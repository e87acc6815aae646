using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Generation;

/// <summary>The logits processors and warpers against hand-computed cases.</summary>
[TestClass]
public sealed class NextTokenSelectorTests
{
    private static int Select(float[] logits, GenerationOptions options, Generator? rng = null, int[]? seen = null) =>
        NextTokenSelector.Select((float[])logits.Clone(), options, rng ?? new Generator(1), seen ?? [], new int[logits.Length]);

    [TestMethod]
    public void Greedy_TakesTheFirstMaximum()
    {
        Assert.AreEqual(1, Select([0f, 3f, 3f, -1f], new GenerationOptions()));
    }

    [TestMethod]
    public void RepetitionPenalty_DividesPositiveAndMultipliesNegativeLogits()
    {
        // Token 0 (logit 2.0) was seen: 2.0 / 2.5 = 0.8 < 1.0 of token 1; token 2 (−1) seen: −2.5 stays lowest.
        Assert.AreEqual(1, Select([2f, 1f, -1f], new GenerationOptions { RepetitionPenalty = 2.5f }, seen: [0, 2]));
        // With penalty 1.5, 2.0 / 1.5 = 1.33 still beats 1.0.
        Assert.AreEqual(0, Select([2f, 1f, -1f], new GenerationOptions { RepetitionPenalty = 1.5f }, seen: [0, 2]));
    }

    [TestMethod]
    public void SampledFrequencies_MatchTheWarpedDistribution()
    {
        float[] logits = [MathF.Log(0.5f), MathF.Log(0.3f), MathF.Log(0.15f), MathF.Log(0.05f)];
        // top_p = 0.75: ascending cumulative 0.05, 0.20 ≤ 0.25 are removed; 0.50 > 0.25 keeps token 1 → {0: 0.5, 1: 0.3} renormalised.
        AssertFrequencies(logits, new GenerationOptions { DoSample = true, TopK = 0, TopP = 0.75f }, [0.625, 0.375, 0, 0]);
        // top_k = 3 drops token 3: {0.5, 0.3, 0.15} / 0.95.
        AssertFrequencies(logits, new GenerationOptions { DoSample = true, TopK = 3 }, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0]);
        // Temperature 2 takes the square root of each probability before renormalising.
        double[] sqrt = [Math.Sqrt(0.5), Math.Sqrt(0.3), Math.Sqrt(0.15), Math.Sqrt(0.05)];
        AssertFrequencies(logits, new GenerationOptions { DoSample = true, TopK = 0, Temperature = 2f }, [.. sqrt.Select(s => s / sqrt.Sum())]);
    }

    private static void AssertFrequencies(float[] logits, GenerationOptions options, double[] expected)
    {
        const int draws = 40000;
        var rng = new Generator(123);
        var counts = new int[logits.Length];
        for (int i = 0; i < draws; i++) counts[Select(logits, options, rng)]++;
        for (int k = 0; k < logits.Length; k++)
        {
            double p = counts[k] / (double)draws;
            // 5 standard errors of a binomial proportion (deterministic for the fixed seed).
            double tolerance = 5 * Math.Sqrt(Math.Max(expected[k] * (1 - expected[k]), 1e-9) / draws);
            Assert.AreEqual(expected[k], p, Math.Max(tolerance, 1e-12), $"token {k}");
        }
    }
}
