using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Training;

[TestClass]
public sealed class ResumableAdamWTests
{
    private static Tensor Param(ulong seed, params int[] shape)
    {
        using (TensorScope.Untracked()) return Tensor.Randn(new Generator(seed), shape).RequiresGrad_();
    }

    private static void SetGrad(Tensor p, ulong seed)
    {
        p.ZeroGrad();
        Tensor g;
        using (TensorScope.Untracked()) g = Tensor.Randn(new Generator(seed), p.ShapeArray());
        p.Mul(g).Sum().Backward();
    }

    [TestMethod]
    public void Updates_AreBitIdenticalToOptimAdamW()
    {
        var a = Param(1, 4, 3);
        var b = Param(1, 4, 3);
        var reference = new AdamW([a], learningRate: 3e-3, weightDecay: 0.05);
        var resumable = new ResumableAdamW([new ParameterGroup([b])], learningRate: 3e-3, weightDecay: 0.05);
        for (ulong step = 0; step < 5; step++)
        {
            SetGrad(a, 100 + step);
            SetGrad(b, 100 + step);
            reference.Step();
            resumable.Step();
            CollectionAssert.AreEqual(a.ToArray(), b.ToArray(), $"step {step + 1}");
        }
    }

    [TestMethod]
    public void RestoredState_ContinuesBitIdentically()
    {
        var p = Param(2, 5);
        var opt = new ResumableAdamW([new ParameterGroup([p])], learningRate: 1e-2);
        for (ulong s = 0; s < 3; s++)
        {
            SetGrad(p, s);
            opt.Step();
        }
        var state = opt.GetState(p)!;
        Assert.AreEqual(3, state.Step);
        var q = Param(99, 5);
        using (Autograd.NoGrad()) q.CopyFrom_(p);
        var restored = new ResumableAdamW([new ParameterGroup([q])], learningRate: 1e-2);
        restored.SetState(q, state.ExpAvg, state.ExpAvgSq, state.Step);
        for (ulong s = 3; s < 6; s++)
        {
            SetGrad(p, s);
            SetGrad(q, s);
            opt.Step();
            restored.Step();
        }
        CollectionAssert.AreEqual(p.ToArray(), q.ToArray());
        Assert.ThrowsExactly<ArgumentException>(() => restored.SetState(q, new float[4], new float[5], 1));
    }
}
