using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class ViewTests
{
    private static Tensor Range(params int[] shape) => Tensor.Arange(shape.Aggregate(1, (a, b) => a * b)).Reshape(shape);

    [TestMethod]
    public void Transpose_SharesStorageAndSwapsStrides()
    {
        var x = Range(2, 3);
        var t = x.Transpose(0, 1);
        Assert.AreSame(x.Storage, t.Storage);
        CollectionAssert.AreEqual(new[] { 3, 2 }, t.ShapeArray());
        CollectionAssert.AreEqual(new[] { 1, 3 }, t.Strides.ToArray());
        Assert.IsFalse(t.IsContiguous);
        CollectionAssert.AreEqual(new float[] { 0, 3, 1, 4, 2, 5 }, t.ToArray());
    }

    [TestMethod]
    public void Permute_Narrow_Select_HandComputed()
    {
        var x = Range(2, 3, 4);                      // x[i,j,k] = 12i + 4j + k
        var p = x.Permute(2, 0, 1);                   // [4,2,3]
        Assert.AreSame(x.Storage, p.Storage);
        CollectionAssert.AreEqual(new[] { 1, 12, 4 }, p.Strides.ToArray());
        Assert.AreEqual(12 * 1 + 4 * 2 + 3, p.At(3, 1, 2));
        var n = x.Narrow(2, 1, 2);                    // k in {1, 2}
        Assert.AreSame(x.Storage, n.Storage);
        Assert.AreEqual(1, n.Offset);
        CollectionAssert.AreEqual(new float[] { 1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22 }, n.ToArray());
        var s = x.Select(1, 2);                       // j = 2 → [2,4]
        CollectionAssert.AreEqual(new float[] { 8, 9, 10, 11, 20, 21, 22, 23 }, s.ToArray());
        CollectionAssert.AreEqual(new float[] { 4, 5, 6, 7 }, x.Slice(1, 1, 2).Reshape(2, 4).Narrow(0, 0, 1).ToArray());
    }

    [TestMethod]
    public void Expand_UsesStrideZeroWithoutCopy()
    {
        var col = Tensor.From([1, 2, 3], 3, 1);
        var e = col.Expand(2, 3, 4);
        Assert.AreSame(col.Storage, e.Storage);
        CollectionAssert.AreEqual(new[] { 0, 1, 0 }, e.Strides.ToArray());
        CollectionAssert.AreEqual(new float[] { 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3 }, e.ToArray());
        Assert.ThrowsExactly<ArgumentException>(() => Tensor.Zeros(2, 3).Expand(4, 3));
    }

    [TestMethod]
    public void Reshape_IsViewWhenPossible_CopiesOtherwise()
    {
        var x = Range(2, 3, 4);
        var r = x.Reshape(6, -1);
        Assert.AreSame(x.Storage, r.Storage);
        CollectionAssert.AreEqual(new[] { 6, 4 }, r.ShapeArray());
        // Narrowing the last dim keeps the two leading dims mergeable (stride 12 = 3·4): still a view...
        var merged = x.Narrow(2, 0, 2).Reshape(6, 2);
        Assert.AreSame(x.Storage, merged.Storage);
        CollectionAssert.AreEqual(new float[] { 0, 1, 4, 5, 8, 9, 12, 13, 16, 17, 20, 21 }, merged.ToArray());
        // ...and so is splitting the contiguous last dim of a permuted tensor.
        var split4 = x.Permute(1, 0, 2).Reshape(3, 2, 2, 2);
        Assert.AreSame(x.Storage, split4.Storage);
        Assert.AreEqual(12f + 2 * 1 + 1, split4.At(0, 1, 1, 1));
        // Merging [2, 4] with strides [12, 1] is impossible without a copy.
        Assert.AreNotSame(x.Storage, x.Permute(1, 0, 2).Reshape(3, 8).Storage);
        // ...but flattening a transposed matrix needs a copy.
        var t = Range(2, 3).Transpose(0, 1);
        var flat = t.Reshape(-1);
        Assert.AreNotSame(t.Storage, flat.Storage);
        CollectionAssert.AreEqual(new float[] { 0, 3, 1, 4, 2, 5 }, flat.ToArray());
        // splitting a dimension of a non-contiguous view is still a view
        var split = t.Reshape(3, 2, 1);
        Assert.AreSame(t.Storage, split.Storage);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => x.Reshape(5, -1));
        StringAssert.Contains(ex.Message, "[2, 3, 4]");
    }

    [TestMethod]
    public void Unsqueeze_Squeeze_Contiguous()
    {
        var x = Range(2, 3);
        CollectionAssert.AreEqual(new[] { 2, 1, 3 }, x.Unsqueeze(1).ShapeArray());
        CollectionAssert.AreEqual(new[] { 2, 3, 1 }, x.Unsqueeze(-1).ShapeArray());
        CollectionAssert.AreEqual(new[] { 2, 3 }, x.Unsqueeze(0).Squeeze(0).ShapeArray());
        Assert.ThrowsExactly<ArgumentException>(() => x.Squeeze(0));
        var t = x.Transpose(0, 1);
        var c = t.Contiguous();
        Assert.IsTrue(c.IsContiguous);
        Assert.AreSame(c, c.Contiguous());
        CollectionAssert.AreEqual(t.ToArray(), c.ToArray());
    }

    [TestMethod]
    public void ViewGradients_MatchFiniteDifferences()
    {
        var x = GradCheck.Param(21, 2, 3, 4);
        GradCheck.Check(t => t[0].Transpose(0, 2).Mul(t[0].Permute(2, 1, 0)), [x]);
        GradCheck.Check(t => t[0].Narrow(1, 1, 2).Exp(), [x]);
        GradCheck.Check(t => t[0].Permute(1, 2, 0).Reshape(3, 8).Tanh(), [x]);
        GradCheck.Check(t => t[0].Narrow(0, 1, 1).Expand(3, 3, 4).Sigmoid(), [x]);
        GradCheck.Check(t => t[0].Unsqueeze(1).Squeeze(1).Transpose(1, 2).Contiguous().Mul(2f), [x]);
        GradCheck.Check(t => t[0].Clone().Select(2, 3), [x]);
    }

    [TestMethod]
    public void DTypeConversions_RoundAsPyTorch()
    {
        // 1 + 2^-8 is exactly halfway between two bfloat16 values: ties to even rounds down to 1.
        var x = Tensor.From([1f + 1f / 256, 1f + 3f / 256, -2.5f, float.NaN], 4);
        var bf = x.To(DType.BFloat16);
        Assert.AreEqual(DType.BFloat16, bf.DType);
        var back = bf.To(DType.Float32).ToArray();
        Assert.AreEqual(1f, back[0]);
        Assert.AreEqual(1f + 4f / 256, back[1]);
        Assert.AreEqual(-2.5f, back[2]);
        Assert.IsTrue(float.IsNaN(back[3]));
        var h = Tensor.From([0.1f, 65504f], 2).To(DType.Float16).To(DType.Float32).ToArray();
        Assert.AreEqual((float)(Half)0.1f, h[0]);
        Assert.AreEqual(65504f, h[1]);
        CollectionAssert.AreEqual(new[] { 1, -2, 3 }, Tensor.From([1.9f, -2.7f, 3f], 3).To(DType.Int32).ToInt32Array());
        Assert.ThrowsExactly<InvalidOperationException>(() => bf.RequiresGrad = true);
    }

    [TestMethod]
    public void FromStorage_WrapsExternalMemoryWithoutCopy()
    {
        var backing = GC.AllocateArray<float>(6, pinned: true);
        for (int i = 0; i < 6; i++) backing[i] = i;
        unsafe
        {
            fixed (float* p = backing)
            {
                var storage = new ExternalStorage((nint)p, 6, DType.Float32, backing);
                var t = Tensor.FromStorage(storage, [2, 3]);
                CollectionAssert.AreEqual(new float[] { 0, 3, 1, 4, 2, 5 }, t.Transpose(0, 1).ToArray());
                backing[4] = 40;
                Assert.AreEqual(40f, t.At(1, 1));
                Assert.ThrowsExactly<ArgumentException>(() => Tensor.FromStorage(storage, [3, 3]));
            }
        }
    }
}
