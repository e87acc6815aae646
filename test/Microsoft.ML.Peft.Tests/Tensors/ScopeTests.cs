using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class ScopeTests
{
    [TestMethod]
    public void TensorFromDisposedScope_ThrowsNamingOpAndShape()
    {
        Tensor y;
        using (TensorScope.Begin()) y = Tensor.Ones(2, 3).Exp();
        var ex = Assert.ThrowsExactly<ObjectDisposedException>(() => y.ToArray());
        StringAssert.Contains(ex.Message, "'exp'");
        StringAssert.Contains(ex.Message, "[2, 3]");
    }

    [TestMethod]
    public void BackwardAfterScopeDisposed_IsReported()
    {
        var w = Tensor.From([1f, 2f], 2).RequiresGrad_();
        Tensor loss;
        using (TensorScope.Begin())
        {
            loss = w.Exp().Sum();
            loss.MoveToOuterScope();    // the loss survives, but the saved exp output does not
        }
        var ex = Assert.ThrowsExactly<ObjectDisposedException>(() => loss.Backward());
        StringAssert.Contains(ex.Message, "exp");
    }

    // TensorPool.AllocatedBytes counts the whole process: run alone, as the other pool-counting test classes do, or a
    // test class running in parallel can allocate between the two reads.
    [TestMethod]
    [DoNotParallelize]
    public void MoveToOuterScope_KeepsResult_AndBuffersAreReused()
    {
        Tensor kept;
        using (TensorScope.Begin())
        {
            var tmp = Tensor.Full(2f, 4, 4);
            kept = tmp.Mul(3f);
            kept.MoveToOuterScope();
        }
        CollectionAssert.AreEqual(Enumerable.Repeat(6f, 16).ToArray(), kept.ToArray());

        // After one warm-up pass the pool serves every buffer of an identical pass.
        for (int i = 0; i < 2; i++)
        {
            using var s = TensorScope.Begin();
            _ = Tensor.Full(1f, 333, 17).Exp().Sum(0);
        }
        long before = TensorPool.AllocatedBytes;
        using (TensorScope.Begin()) _ = Tensor.Full(1f, 333, 17).Exp().Sum(0);
        Assert.AreEqual(before, TensorPool.AllocatedBytes);
    }

    [TestMethod]
    public void Scopes_Nest_AndMustBeDisposedInOrder()
    {
        var outer = TensorScope.Begin();
        var inner = TensorScope.Begin();
        Tensor a = Tensor.Ones(3);
        Assert.AreSame(inner, TensorScope.Current);
        Assert.ThrowsExactly<InvalidOperationException>(() => outer.Dispose());
        a.MoveToOuterScope();
        inner.Dispose();
        Assert.AreEqual(3f, a.Sum().Item(), "moved into the outer scope, still alive");
        outer.Dispose();
        Assert.IsNull(TensorScope.Current);
        Assert.ThrowsExactly<ObjectDisposedException>(() => a.ToArray());
    }

    [TestMethod]
    public void LeafGradients_OutliveTheScope()
    {
        var w = Tensor.From([1f, 2f], 2).RequiresGrad_();
        using (TensorScope.Begin()) w.Mul(w).Sum().Backward();
        CollectionAssert.AreEqual(new float[] { 2, 4 }, w.Grad!.ToArray());
    }

    [TestMethod]
    public void PoolSizeClasses_WasteAtMostAQuarter()
    {
        foreach (int n in new[] { 1, 64, 65, 100, 128, 129, 1000, 4097, 786432, 12582912 })
        {
            TensorPool.BucketIndex(n, out int capacity);
            Assert.IsTrue(capacity >= n && (n <= 64 || capacity <= n * 1.25 + 1), $"{n} → {capacity}");
        }
    }
}
