using System.Text.Json;
using Microsoft.ML.Peft.GaLore;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Tensors;

namespace Microsoft.ML.Peft.Tests.GaLore;

[TestClass]
public sealed class GaLoreAdamWTests
{
    private static void SetGrad(Tensor p, ReadOnlySpan<float> values)
    {
        p.ZeroGrad();
        p.Mul(Tensor.From(values, p.ShapeArray()).Detach()).Sum().Backward();   // d/dp Σ p·g = g
    }

    private static float[] RandomValues(Generator generator, int count) => Tensor.Randn(generator, count).ToArray();

    /// <summary>
    /// Five steps on a tall (6×4, right projection) and a wide (3×5, left projection) weight with rank 2, refreshing
    /// the projector every 2 steps, plus a bias on plain AdamW: parameters after every step equal
    /// build/reference/galore_reference.py's (PyTorch, SVD in double).
    /// </summary>
    [TestMethod]
    public void FiveSteps_MatchPyTorchReference()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestPaths.Fixture("galore", "galore_reference.json")));
        var root = doc.RootElement;
        var init = root.GetProperty("init");
        var tall = Tensor.From(init.GetProperty("tall").Floats(), 6, 4).RequiresGrad_();
        var wide = Tensor.From(init.GetProperty("wide").Floats(), 3, 5).RequiresGrad_();
        var bias = Tensor.From(init.GetProperty("bias").Floats(), 4).RequiresGrad_();
        var options = new GaLoreOptions
        {
            Rank = root.GetProperty("rank").GetInt32(),
            UpdateProjectionGap = root.GetProperty("update_proj_gap").GetInt32(),
            Scale = root.GetProperty("scale").GetDouble(),
        };
        var optimizer = new GaLoreAdamW([tall, wide], [bias], options, root.GetProperty("lr").GetDouble(),
            root.GetProperty("beta1").GetDouble(), root.GetProperty("beta2").GetDouble(), root.GetProperty("eps").GetDouble(),
            root.GetProperty("weight_decay").GetDouble());
        var grads = root.GetProperty("grads").EnumerateArray().ToArray();
        var steps = root.GetProperty("steps").EnumerateArray().ToArray();
        Assert.AreEqual(5, steps.Length);
        for (int s = 0; s < steps.Length; s++)
        {
            SetGrad(tall, grads[s].GetProperty("tall").Floats());
            SetGrad(wide, grads[s].GetProperty("wide").Floats());
            SetGrad(bias, grads[s].GetProperty("bias").Floats());
            optimizer.Step();
            GradCheck.AssertClose(steps[s].GetProperty("tall").Floats(), tall.ToArray(), 2e-6, $"step {s + 1} tall");
            GradCheck.AssertClose(steps[s].GetProperty("wide").Floats(), wide.ToArray(), 2e-6, $"step {s + 1} wide");
            GradCheck.AssertClose(steps[s].GetProperty("bias").Floats(), bias.ToArray(), 2e-7, $"step {s + 1} bias");
        }
        Assert.IsTrue(optimizer.ProjectorOf(tall)!.ProjectsColumns);
        Assert.IsFalse(optimizer.ProjectorOf(wide)!.ProjectsColumns);
    }

    /// <summary>With r ≥ min(m, n) the subspace is everything and α = 1: every bit equals AdamW's.</summary>
    [TestMethod]
    public void FullRank_WithUnitScale_IsBitIdenticalToAdamW()
    {
        var generator = new Generator(11);
        float[] w0 = RandomValues(generator, 5 * 3), b0 = RandomValues(generator, 3);
        var ours = (W: Tensor.From(w0, 5, 3).RequiresGrad_(), B: Tensor.From(b0, 3).RequiresGrad_());
        var plain = (W: Tensor.From(w0, 5, 3).RequiresGrad_(), B: Tensor.From(b0, 3).RequiresGrad_());
        var galore = new GaLoreAdamW([ours.W], [ours.B], new GaLoreOptions { Rank = 3, Scale = 1, UpdateProjectionGap = 2 }, 3e-3, weightDecay: 0.05);
        var adamw = new AdamW([plain.W, plain.B], 3e-3, weightDecay: 0.05);
        for (int step = 0; step < 4; step++)
        {
            float[] gw = RandomValues(generator, 15), gb = RandomValues(generator, 3);
            SetGrad(ours.W, gw);
            SetGrad(ours.B, gb);
            SetGrad(plain.W, gw);
            SetGrad(plain.B, gb);
            galore.Step();
            adamw.Step();
            CollectionAssert.AreEqual(plain.W.ToArray(), ours.W.ToArray(), $"weight after step {step + 1}");
            CollectionAssert.AreEqual(plain.B.ToArray(), ours.B.ToArray(), $"bias after step {step + 1}");
        }
        Assert.IsTrue(galore.ProjectorOf(ours.W)!.IsIdentity);
    }

    /// <summary>
    /// A gradient of exact rank 2 lies in its own top-2 subspace, so projecting and projecting back (α = 1) gives it
    /// back, for both orientations; the basis is orthonormal.
    /// </summary>
    [TestMethod]
    public void Projector_RecoversAGradientOfItsOwnRank()
    {
        var generator = new Generator(3);
        foreach (var (m, n) in new[] { (7, 4), (4, 9) })
        {
            // G = X·Y with X m×2, Y 2×n.
            float[] x = RandomValues(generator, m * 2), y = RandomValues(generator, 2 * n), g = new float[m * n];
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < n; j++) g[i * n + j] = x[i * 2] * y[j] + x[i * 2 + 1] * y[n + j];
            }
            var projector = GaLoreProjector.FromGradient(g, m, n, 2, GaLoreSvd.Exact, 0, "G");
            Assert.AreEqual(m >= n ? m * 2 : 2 * n, projector.ProjectedCount);
            var r = new float[projector.ProjectedCount];
            projector.Project(g, r);
            var back = new float[m * n];
            projector.AddProjectedBack(r, 1f, back);
            GradCheck.AssertClose(g, back, 1e-5, $"{m}×{n}");

            // Orthonormal basis: projecting a basis-aligned matrix twice changes nothing (P·Pᵀ idempotent on its range).
            var again = new float[projector.ProjectedCount];
            projector.Project(back, again);
            GradCheck.AssertClose(r, again, 1e-5, $"{m}×{n} re-projection");
        }
    }

    /// <summary>The randomized SVD finds the same subspace as the exact one when the spectrum has a gap.</summary>
    [TestMethod]
    public void RandomizedSvd_ProjectsLikeExactSvd_WhenTheSpectrumHasAGap()
    {
        var generator = new Generator(5);
        int m = 40, n = 30;
        float[] noise = RandomValues(generator, m * n), x = RandomValues(generator, m * 3), y = RandomValues(generator, 3 * n);
        var g = new float[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++) g[i * n + j] = 10 * (x[i * 3] * y[j] + x[i * 3 + 1] * y[n + j] + x[i * 3 + 2] * y[2 * n + j]) + 0.01f * noise[i * n + j];
        }
        var exact = GaLoreProjector.FromGradient(g, m, n, 3, GaLoreSvd.Exact, 0, "G");
        var randomized = GaLoreProjector.FromGradient(g, m, n, 3, GaLoreSvd.Randomized, 0, "G");
        float[] a = new float[m * n], b = new float[m * n], r = new float[exact.ProjectedCount];
        exact.Project(g, r);
        exact.AddProjectedBack(r, 1f, a);
        randomized.Project(g, r);
        randomized.AddProjectedBack(r, 1f, b);
        GradCheck.AssertClose(a, b, 1e-3, "rank-3 reconstructions");
    }

    /// <summary>
    /// State memory: a projected 64×16 weight at rank 4 keeps two 64×4 fp32 moments; with 8-bit state a 256×64
    /// weight at rank 32 (8,192 projected values) keeps 2 bytes per value plus 2 absmax floats per 256-block.
    /// The first 8-bit step equals the fp32 step (moments start at zero and are quantized after use).
    /// </summary>
    [TestMethod]
    public void StateBytes_AreThoseOfTheProjectedMoments_AndEightBitFirstStepEqualsFloat32()
    {
        var generator = new Generator(9);
        var small = GradCheck.Param(1, 64, 16);
        var optimizer = new GaLoreAdamW([small], [], new GaLoreOptions { Rank = 4 });
        SetGrad(small, RandomValues(generator, 64 * 16));
        optimizer.Step();
        Assert.AreEqual(2L * 64 * 4 * sizeof(float), optimizer.StateBytes);
        Assert.AreEqual(4L * 16 * sizeof(float), optimizer.ProjectorBytes);

        float[] w0 = RandomValues(generator, 256 * 64), g = RandomValues(generator, 256 * 64);
        var w32 = Tensor.From(w0, 256, 64).RequiresGrad_();
        var w8 = Tensor.From(w0, 256, 64).RequiresGrad_();
        var fp32 = new GaLoreAdamW([w32], [], new GaLoreOptions { Rank = 32 });
        var eight = new GaLoreAdamW([w8], [], new GaLoreOptions { Rank = 32, EightBitState = true });
        SetGrad(w32, g);
        SetGrad(w8, g);
        fp32.Step();
        eight.Step();
        CollectionAssert.AreEqual(w32.ToArray(), w8.ToArray());
        Assert.AreEqual(2L * 256 * 32 + 2L * (256 * 32 / 256) * sizeof(float), eight.StateBytes);
        Assert.AreEqual(2L * 256 * 32 * sizeof(float), fp32.StateBytes);
    }

    /// <summary>ForModel projects linear weights only and names the available layers when a filter matches nothing.</summary>
    [TestMethod]
    public void ForModel_ProjectsLinearWeights_AndRejectsUnknownTargets()
    {
        var model = new TinyModel(new Generator(1));   // 2 blocks of q_proj, v_proj, fc1, fc2, then classifier; all with biases
        var optimizer = GaLoreAdamW.ForModel(model, new GaLoreOptions { Rank = 2 });
        Assert.AreEqual(9, optimizer.Groups[0].Parameters.Count);
        Assert.IsTrue(optimizer.Groups[0].Parameters.All(p => p.Rank == 2));
        int total = model.Parameters(trainableOnly: true).Count();
        Assert.AreEqual(total - 9, optimizer.Groups[1].Parameters.Count, "the biases get plain AdamW");
        Assert.IsTrue(optimizer.Groups[1].Parameters.All(p => p.Rank == 1));
        var attention = GaLoreAdamW.ForModel(model, targetNameParts: ["attn"]);
        Assert.AreEqual(4, attention.Groups[0].Parameters.Count);
        Assert.AreEqual(total - 4, attention.Groups[1].Parameters.Count);
        var e = Assert.ThrowsExactly<ArgumentException>(() => GaLoreAdamW.ForModel(model, targetNameParts: ["self_attn"]));
        StringAssert.Contains(e.Message, "available linear layers: layers.0.attn.q_proj, layers.0.attn.v_proj");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new GaLoreAdamW([small()], [], new GaLoreOptions { Rank = 0 }));
        Assert.ThrowsExactly<ArgumentException>(() => new GaLoreAdamW([GradCheck.Param(1, 4)], []));

        static Tensor small() => GradCheck.Param(1, 3, 3);
    }
}
