using Microsoft.ML.Peft.AdapterArithmetic;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.AdapterArithmetic;

[TestClass]
public sealed class WeightedAdaptersTests
{
    /// <summary>Two rank-2 adapters with non-zero B ("a": alpha 4, scaling 2; "b": alpha 2, scaling 1) on q_proj and fc1.</summary>
    private static PeftModel TwoAdapters(int rankB = 2)
    {
        var model = new TinyModel(new Generator(1));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "fc1" }, Rank = 2, Alpha = 4, InitLoraWeights = LoraInit.Random }, "a", new Generator(2));
        peft.AddAdapter("b", new LoraConfig { TargetModules = new[] { "q_proj", "fc1" }, Rank = rankB, Alpha = rankB, InitLoraWeights = LoraInit.Random });
        return peft;
    }

    private static IEnumerable<LoraLinear> Layers(PeftModel peft) => peft.TunerLayers().Select(l => (LoraLinear)l.Layer);

    private static float[] Expected(LoraLinear layer, double wa, double wb)
    {
        var a = layer.DeltaWeight("a").ToArray();
        var b = layer.DeltaWeight("b").ToArray();
        return a.Select((x, i) => (float)(wa * x + wb * b[i])).ToArray();
    }

    [TestMethod]
    public void Cat_IsExactlyTheWeightedSumOfDeltas_EvenWithNegativeWeights()
    {
        var peft = TwoAdapters();
        peft.AddWeightedAdapter(["a", "b"], [0.7, -0.4], "mix", new WeightedAdapterOptions { CombinationType = CombinationType.Cat });
        var config = (LoraConfig)peft.PeftConfigs["mix"];
        Assert.AreEqual(4, config.Rank);
        Assert.AreEqual(4.0, config.Alpha);
        foreach (var layer in Layers(peft))
        {
            Assert.AreEqual(1f, layer.Scaling("mix"));
            GradCheck.AssertClose(Expected(layer, 0.7, -0.4), layer.DeltaWeight("mix").ToArray(), 1e-6);
        }
        Assert.IsFalse(peft.ActiveAdapters.Contains("mix"));
    }

    /// <summary>
    /// SVD: with svd_rank ≥ the rank of the combination (2 + 2) the delta is reproduced; with rank 1 the result is the
    /// best rank-1 approximation: its norm is the spectral norm (checked by power iteration) and the residual is
    /// orthogonal to it (‖Δ‖² = ‖Δ₁‖² + ‖Δ − Δ₁‖²).
    /// </summary>
    [TestMethod]
    public void Svd_ReproducesTheCombinationOrItsBestLowRankApproximation()
    {
        var peft = TwoAdapters();
        peft.AddWeightedAdapter(["a", "b"], [0.7, -0.4], "full", new WeightedAdapterOptions { SvdRank = 4 });
        peft.AddWeightedAdapter(["a", "b"], [0.7, -0.4], "one", new WeightedAdapterOptions { SvdRank = 1 });
        foreach (var layer in Layers(peft))
        {
            var delta = Expected(layer, 0.7, -0.4);
            GradCheck.AssertClose(delta, layer.DeltaWeight("full").ToArray(), 1e-5);
            var one = layer.DeltaWeight("one").ToArray();
            double total = delta.Sum(x => (double)x * x), kept = one.Sum(x => (double)x * x), residual = delta.Select((x, i) => (double)(x - one[i]) * (x - one[i])).Sum();
            Assert.AreEqual(total, kept + residual, 1e-5 * total);
            Assert.AreEqual(SpectralNorm(delta, layer.OutFeatures, layer.InFeatures), Math.Sqrt(kept), 1e-4 * Math.Sqrt(total));
        }
    }

    /// <summary>Linear: A and B are combined separately with √(w·scaling), PEFT's definition (cross terms included).</summary>
    [TestMethod]
    public void Linear_CombinesAAndBSeparately_AndOneAdapterIsScaledExactly()
    {
        var peft = TwoAdapters();
        peft.AddWeightedAdapter(["a", "b"], [0.5, 0.3], "lin", new WeightedAdapterOptions { CombinationType = CombinationType.Linear });
        peft.AddWeightedAdapter(["a"], [0.5], "half");
        foreach (var layer in Layers(peft))
        {
            double ra = Math.Sqrt(0.5 * layer.Scaling("a")), rb = Math.Sqrt(0.3 * layer.Scaling("b"));
            var a1 = layer.LoraA("a").ToArray();
            var a2 = layer.LoraA("b").ToArray();
            GradCheck.AssertClose(a1.Select((x, i) => (float)(ra * x + rb * a2[i])).ToArray(), layer.LoraA("lin").ToArray(), 1e-6);
            var b1 = layer.LoraB("a").ToArray();
            var b2 = layer.LoraB("b").ToArray();
            GradCheck.AssertClose(b1.Select((x, i) => (float)(ra * x + rb * b2[i])).ToArray(), layer.LoraB("lin").ToArray(), 1e-6);
            GradCheck.AssertClose(layer.DeltaWeight("a").ToArray().Select(x => 0.5f * x).ToArray(), layer.DeltaWeight("half").ToArray(), 1e-6);
        }
    }

    /// <summary>
    /// TIES' element-wise sign election makes a full-rank matrix, so with svd_rank = min(out, in) (8 for every targeted
    /// layer here) the re-factorised adapter holds exactly TIES of the two deltas.
    /// </summary>
    [TestMethod]
    public void TiesSvd_AppliesTiesToTheDeltas()
    {
        var peft = TwoAdapters();
        peft.AddWeightedAdapter(["a", "b"], [1.0, 1.0], "ties", new WeightedAdapterOptions { CombinationType = CombinationType.TiesSvd, Density = 0.5, SvdRank = 8 });
        foreach (var layer in Layers(peft))
        {
            var tasks = new[] { layer.DeltaWeight("a").ToArray(), layer.DeltaWeight("b").ToArray() };
            GradCheck.AssertClose(TaskArithmetic.Ties(tasks, [1.0, 1.0], 0.5, MajoritySignMethod.Total), layer.DeltaWeight("ties").ToArray(), 1e-5);
        }
    }

    [TestMethod]
    public void BadRequests_FailWithTheReason()
    {
        var peft = TwoAdapters(rankB: 3);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => peft.AddWeightedAdapter(["a", "b"], [1.0, 1.0], "x", new WeightedAdapterOptions { CombinationType = CombinationType.Linear })).Message, "ranks are [2, 3]");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => peft.AddWeightedAdapter(["a"], [-1.0], "x")).Message, "negative");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => peft.AddWeightedAdapter(["a", "c"], [1.0, 1.0], "x")).Message, "adapter 'c' does not exist");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => peft.AddWeightedAdapter(["a", "b"], [1.0, 1.0], "x", new WeightedAdapterOptions { CombinationType = CombinationType.DareTiesSvd })).Message, "Density");
        Assert.ThrowsExactly<ArgumentException>(() => peft.AddWeightedAdapter(["a", "b"], [1.0], "x"));
        Assert.ThrowsExactly<ArgumentException>(() => peft.AddWeightedAdapter(["a"], [1.0], "b"));
    }

    private static double SpectralNorm(float[] m, int rows, int columns)
    {
        var v = Enumerable.Range(0, columns).Select(i => 1.0 + 0.1 * i).ToArray();
        double sigma = 0;
        for (int iteration = 0; iteration < 500; iteration++)
        {
            var u = new double[rows];
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < columns; c++) u[r] += m[r * columns + c] * v[c];
            }
            var w = new double[columns];
            for (int r = 0; r < rows; r++)
            {
                for (int c = 0; c < columns; c++) w[c] += m[r * columns + c] * u[r];
            }
            double norm = Math.Sqrt(w.Sum(x => x * x));
            sigma = Math.Sqrt(norm);
            v = w.Select(x => x / norm).ToArray();
        }
        return sigma;
    }
}

[TestClass]
public sealed class LoraMixedBatchTests
{
    /// <summary>
    /// Rows [a, b, base, a, b] in one batch give, bit for bit, what the batch gives on those rows with the row's adapter
    /// alone (adapters disabled for "__base__"); adapter "b" uses DoRA, so both kinds of term are covered.
    /// </summary>
    [TestMethod]
    public void EachRowEqualsARunWithItsAdapterAlone()
    {
        var model = new TinyModel(new Generator(1));
        var peft = PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "fc1" }, Rank = 2, Alpha = 4, InitLoraWeights = LoraInit.Random }, "a", new Generator(2));
        peft.AddAdapter("b", new LoraConfig { TargetModules = new[] { "q_proj", "fc1", "fc2" }, Rank = 3, Alpha = 3, UseDora = true, InitLoraWeights = LoraInit.Random });
        model.Eval();
        var x = Tensor.Randn(new Generator(6), 5, 8);
        string[] names = ["a", "b", LoraMixedBatch.BaseModelName, "a", "b"];
        float[] mixed;
        using (Autograd.NoGrad())
        using (peft.UseAdapterPerRow(names))
        {
            mixed = model.Forward(x).ToArray();
        }
        int classes = mixed.Length / 5;
        foreach (var name in names.Distinct())
        {
            // The whole batch with this adapter alone (same GEMM shapes as the mixed run), compared on its rows.
            float[] alone;
            using (Autograd.NoGrad())
            {
                if (name == LoraMixedBatch.BaseModelName)
                {
                    using (peft.DisableAdapters()) alone = model.Forward(x).ToArray();
                }
                else
                {
                    peft.SetAdapter(name);
                    alone = model.Forward(x).ToArray();
                }
            }
            for (int row = 0; row < names.Length; row++)
            {
                if (names[row] != name) continue;
                CollectionAssert.AreEqual(alone.AsSpan(row * classes, classes).ToArray(), mixed.AsSpan(row * classes, classes).ToArray(), $"row {row} ({name})");
            }
        }

        // The scope ends: the active adapter applies to every row again.
        peft.SetAdapter("a");
        using (Autograd.NoGrad())
        {
            var all = model.Forward(x).ToArray();
            CollectionAssert.AreEqual(all.AsSpan(0, classes).ToArray(), mixed.AsSpan(0, classes).ToArray());
            Assert.IsFalse(all.AsSpan(classes, classes).SequenceEqual(mixed.AsSpan(classes, classes)));
        }
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => peft.UseAdapterPerRow(["a", "c"])).Message, "'c' does not exist");
        model.Train();
        Assert.ThrowsExactly<InvalidOperationException>(() => peft.UseAdapterPerRow(names));
        model.Eval();
        using (Autograd.NoGrad())
        using (peft.UseAdapterPerRow(["a", "b"]))
        {
            StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => model.Forward(x)).Message, "name 2 rows");
        }
    }
}
