using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class IndexJoinTests
{
    [TestMethod]
    public void ConcatSplitStack_HandComputed()
    {
        var a = Tensor.From([1, 2, 3, 4], 2, 2);
        var b = Tensor.From([5, 6], 2, 1);
        var c = Tensor.Concat([a, b], 1);
        CollectionAssert.AreEqual(new float[] { 1, 2, 5, 3, 4, 6 }, c.ToArray());
        var parts = c.Split([2, 1], 1);
        CollectionAssert.AreEqual(a.ToArray(), parts[0].ToArray());
        CollectionAssert.AreEqual(b.ToArray(), parts[1].ToArray());
        Assert.AreSame(c.Storage, parts[1].Storage);
        var s = Tensor.Stack([a, a.Mul(10f)], 0);
        CollectionAssert.AreEqual(new[] { 2, 2, 2 }, s.ShapeArray());
        CollectionAssert.AreEqual(new float[] { 1, 2, 3, 4, 10, 20, 30, 40 }, s.ToArray());
        CollectionAssert.AreEqual(new float[] { 1, 10, 2, 20, 3, 30, 4, 40 }, Tensor.Stack([a, a.Mul(10f)], -1).ToArray());
        Assert.AreEqual(3, Tensor.Arange(7).Split(3, 0).Length);
        CollectionAssert.AreEqual(new[] { 1, 2, 7 }, Tensor.Concat([Tensor.FromInt32([1, 2], 2), Tensor.FromInt32([7], 1)], 0).ToInt32Array());
    }

    [TestMethod]
    public void WhereMaskedFillGatherIndexSelect_HandComputed()
    {
        var x = Tensor.From([1, 2, 3, 4, 5, 6], 2, 3);
        var cond = Tensor.FromInt32([1, 0, 1], 3);
        CollectionAssert.AreEqual(new float[] { 1, 0, 3, 4, 0, 6 }, Tensor.Where(cond, x, Tensor.Zeros(1)).ToArray());
        CollectionAssert.AreEqual(new float[] { -1, -1, -1, 4, 5, 6 }, x.MaskedFill(Tensor.FromInt32([1, 0], 2, 1), -1f).ToArray());
        CollectionAssert.AreEqual(new float[] { 3, 1, 4, 4 }, x.Gather(1, Tensor.FromInt32([2, 0, 0, 0], 2, 2)).ToArray());
        CollectionAssert.AreEqual(new float[] { 4, 2, 6 }, x.Gather(0, Tensor.FromInt32([1, 0, 1], 1, 3)).ToArray());
        CollectionAssert.AreEqual(new float[] { 4, 5, 6, 1, 2, 3, 4, 5, 6 }, x.IndexSelect(0, Tensor.FromInt32([1, 0, 1], 3)).ToArray());
        CollectionAssert.AreEqual(new float[] { 3, 1, 6, 4 }, x.IndexSelect(1, Tensor.FromInt32([2, 0], 2)).ToArray());
    }

    [TestMethod]
    public void IndexOps_Gradients_MatchFiniteDifferences()
    {
        var cond = Tensor.FromInt32([1, 0, 0, 1], 4);
        GradCheck.Check(t => Tensor.Where(cond, t[0], t[1]), [GradCheck.Param(91, 3, 4), GradCheck.Param(92, 1, 4)]);
        GradCheck.Check(t => t[0].MaskedFill(Tensor.FromInt32([0, 1, 0], 3, 1), 2f), [GradCheck.Param(93, 3, 4)]);
        GradCheck.Check(t => t[0].Gather(1, Tensor.FromInt32([0, 0, 3, 2, 1, 1], 2, 3)), [GradCheck.Param(94, 2, 4)]);
        GradCheck.Check(t => t[0].IndexSelect(1, Tensor.FromInt32([2, 0, 2], 3)), [GradCheck.Param(95, 2, 3, 2)]);
        GradCheck.Check(t => Tensor.Concat([t[0], t[1].Transpose(0, 1)], 0), [GradCheck.Param(96, 2, 3), GradCheck.Param(97, 3, 1)]);
        GradCheck.Check(t => Tensor.Stack([t[0], t[0].Exp()], 1), [GradCheck.Param(98, 2, 3)]);
        GradCheck.Check(t => t[0].Split([1, 2], 1)[1].Exp(), [GradCheck.Param(99, 2, 3)]);
    }

    [TestMethod]
    public void Embedding_LooksUpRowsInAnyDtype_AndAccumulatesUsedRows()
    {
        var w = Tensor.From([0, 1, 10, 11, 20, 21, 30, 31], 4, 2).RequiresGrad_();
        var ids = Tensor.FromInt32([2, 0, 2, 3, 2, 1], 2, 3);
        var y = w.Embedding(ids);
        CollectionAssert.AreEqual(new[] { 2, 3, 2 }, y.ShapeArray());
        CollectionAssert.AreEqual(new float[] { 20, 21, 0, 1, 20, 21, 30, 31, 20, 21, 10, 11 }, y.ToArray());
        y.Sum().Backward();
        CollectionAssert.AreEqual(new float[] { 1, 1, 1, 1, 3, 3, 1, 1 }, w.Grad!.ToArray());
        w.Embedding(ids, paddingIndex: 2).Sum().Backward();
        CollectionAssert.AreEqual(new float[] { 2, 2, 2, 2, 3, 3, 2, 2 }, w.Grad!.ToArray(), "padding row gets no gradient; others accumulate");
        var bf = w.Detach().To(DType.BFloat16);
        CollectionAssert.AreEqual(y.ToArray(), bf.Embedding(ids).ToArray());
        CollectionAssert.AreEqual(y.ToArray(), w.Detach().To(DType.Float16).Embedding(ids).ToArray());
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => w.Embedding(Tensor.FromInt32([1, 4], 2)));
        StringAssert.Contains(ex.Message, "index 4 at position 1");
    }
}
