using System.Text.Json;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Tensors;

namespace Microsoft.ML.Peft.Tests.Optim;

[TestClass]
public sealed class OptimizerTests
{
    /// <summary>Runs the fixture's 3 steps and compares parameters with PyTorch after each.</summary>
    private static void RunAgainstFixture(string key, Func<Tensor[], Optimizer> make)
    {
        var run = EngineReference.Root.GetProperty(key);
        var p1 = Tensor.From(run.GetProperty("p1").Floats(), 2, 3).RequiresGrad_();
        var p2 = Tensor.From(run.GetProperty("p2").Floats(), 3).RequiresGrad_();
        var optimizer = make([p1, p2]);
        var grads = run.GetProperty("grads").EnumerateArray().ToArray();
        var steps = run.GetProperty("steps").EnumerateArray().ToArray();
        for (int s = 0; s < 3; s++)
        {
            SetGrad(p1, grads[s].GetProperty("g1"));
            SetGrad(p2, grads[s].GetProperty("g2"));
            optimizer.Step();
            GradCheck.AssertClose(steps[s].GetProperty("p1").Floats(), p1.ToArray(), 2e-7, $"{key} step {s + 1} p1");
            GradCheck.AssertClose(steps[s].GetProperty("p2").Floats(), p2.ToArray(), 2e-7, $"{key} step {s + 1} p2");
        }
    }

    private static void SetGrad(Tensor p, JsonElement values)
    {
        p.ZeroGrad();
        p.Mul(Tensor.From(values.Floats(), p.ShapeArray()).Detach()).Sum().Backward();   // d/dp Σ p·g = g
    }

    [TestMethod]
    public void AdamW_ThreeSteps_MatchPyTorch() =>
        RunAgainstFixture("adamw", ps => new AdamW(ps, learningRate: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01));

    [TestMethod]
    public void Sgd_NesterovWithWeightDecay_MatchesPyTorch() =>
        RunAgainstFixture("sgd_nesterov", ps => new Sgd(ps, learningRate: 0.1, momentum: 0.9, weightDecay: 0.01, nesterov: true));

    [TestMethod]
    public void Sgd_MomentumWithDampening_MatchesPyTorch() =>
        RunAgainstFixture("sgd_momentum_dampening", ps => new Sgd(ps, learningRate: 0.05, momentum: 0.8, dampening: 0.3));

    [TestMethod]
    public void AdamW_OneStep_HandComputed()
    {
        // Step 1: m̂ = g, v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + ε) = 1·(1 − 0.1·0.5) − 0.1·sign(g).
        var p = Tensor.From([1f, 1f], 2).RequiresGrad_();
        p.Mul(Tensor.From([3f, -0.5f], 2)).Sum().Backward();
        new AdamW([p], learningRate: 0.1, weightDecay: 0.5, eps: 0).Step();
        GradCheck.AssertClose([0.95f - 0.1f, 0.95f + 0.1f], p.ToArray(), 1e-7);
    }

    [TestMethod]
    public void OptimizerState_IsAllocatedOnlyForTrainableParametersWithGradients()
    {
        var trainable = Tensor.Ones(3).RequiresGrad_();
        var frozen = Tensor.Ones(3);
        var unused = Tensor.Ones(3).RequiresGrad_();
        var adam = new AdamW([trainable, frozen, unused]);
        Assert.AreEqual(0, adam.StateCount);
        trainable.Mul(2f).Sum().Backward();
        adam.Step();
        Assert.AreEqual(1, adam.StateCount);
        CollectionAssert.AreEqual(new float[] { 1, 1, 1 }, frozen.ToArray());
        CollectionAssert.AreEqual(new float[] { 1, 1, 1 }, unused.ToArray());
    }

    [TestMethod]
    public void Schedules_MatchTransformersFormulas()
    {
        foreach (var (key, schedule) in new (string, LearningRateSchedule)[] { ("linear", new LinearWarmupSchedule(3, 10)), ("cosine", new CosineWarmupSchedule(3, 10)) })
        {
            var expected = EngineReference.Root.GetProperty("schedules").GetProperty(key).GetProperty("lrs").EnumerateArray().Select(e => e.GetDouble()).ToArray();
            var optimizer = new Sgd([Tensor.Zeros(1).RequiresGrad_()], learningRate: 0.1);
            var scheduler = new LearningRateScheduler(optimizer, schedule);
            for (int i = 0; i < expected.Length; i++)
            {
                Assert.AreEqual(expected[i], optimizer.LearningRate, 1e-15, $"{key} step {i}");
                optimizer.Step();
                scheduler.Step();
            }
        }
    }

    [TestMethod]
    public void ClipGradNorm_MatchesPyTorch()
    {
        var c = EngineReference.Root.GetProperty("clip_grad_norm");
        var a = Tensor.Zeros(2, 3).RequiresGrad_();
        var b = Tensor.Zeros(4).RequiresGrad_();
        a.Mul(Tensor.From(c.GetProperty("ga").Floats(), 2, 3)).Sum().Backward();
        b.Mul(Tensor.From(c.GetProperty("gb").Floats(), 4)).Sum().Backward();
        double norm = GradientClipping.ClipGradNorm([a, b], c.GetProperty("max_norm").GetDouble());
        Assert.AreEqual(c.GetProperty("norm").GetDouble(), norm, 1e-6);
        GradCheck.AssertClose(c.GetProperty("clipped_a").Floats(), a.Grad!.ToArray(), 1e-7);
        GradCheck.AssertClose(c.GetProperty("clipped_b").Floats(), b.Grad!.ToArray(), 1e-7);
    }

    [TestMethod]
    public void GradientAccumulation_EqualsOneStepOnTheFullBatch()
    {
        var g = new Generator(1);
        var x = Tensor.Randn(g, 8, 5);
        var targets = Tensor.FromInt32([0, 1, 2, 0, 1, 2, 0, 1], 8);
        var w0 = Tensor.Randn(g, 3, 5);

        var full = w0.Clone().Detach().RequiresGrad_();
        var fullOpt = new AdamW([full], learningRate: 0.05);
        x.Linear(full).CrossEntropy(targets).Backward();
        fullOpt.Step();

        var acc = w0.Clone().Detach().RequiresGrad_();
        var accOpt = new AdamW([acc], learningRate: 0.05);
        var accumulator = new GradientAccumulator(accOpt, microBatches: 2);
        Assert.IsFalse(DoMicro(0));
        Assert.IsTrue(DoMicro(4));
        Assert.IsNull(acc.Grad, "gradients are cleared after the step");
        GradCheck.AssertClose(full.ToArray(), acc.ToArray(), 1e-6);

        bool DoMicro(int start)
        {
            accumulator.Scale(x.Narrow(0, start, 4).Linear(acc).CrossEntropy(targets.Narrow(0, start, 4))).Backward();
            return accumulator.MicroStepDone();
        }
    }
}
