using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Optim;

[TestClass]
public sealed class AdamWStateTests
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
    public void RestoredState_ContinuesBitIdentically()
    {
        var p = Param(2, 5);
        var opt = new AdamW([p], learningRate: 1e-2);
        for (ulong s = 0; s < 3; s++)
        {
            SetGrad(p, s);
            opt.Step();
        }
        var state = opt.GetState(p)!;
        Assert.AreEqual(3, state.Step);
        var q = Param(99, 5);
        using (Autograd.NoGrad()) q.CopyFrom_(p);
        var restored = new AdamW([q], learningRate: 1e-2);
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
