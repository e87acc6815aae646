using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class ReductionTests
{
    [TestMethod]
    public void SumMeanMax_OverAxes_HandComputed()
    {
        var x = Tensor.Arange(24).Reshape(2, 3, 4);    // x[i,j,k] = 12i + 4j + k
        Assert.AreEqual(276f, x.Sum().Item());
        Assert.AreEqual(11.5f, x.Mean().Item());
        Assert.AreEqual(23f, x.Max().Item());
        CollectionAssert.AreEqual(new float[] { 6, 22, 38, 54, 70, 86 }, x.Sum(2).ToArray());
        CollectionAssert.AreEqual(new[] { 2, 3, 1 }, x.Sum(-1, keepDim: true).ShapeArray());
        CollectionAssert.AreEqual(new float[] { 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34 }, x.Sum(0).ToArray());
        CollectionAssert.AreEqual(new float[] { 12, 15, 18, 21, 48, 51, 54, 57 }, x.Sum(1).ToArray());
        CollectionAssert.AreEqual(new float[] { 60, 66, 72, 78 }, x.Sum([0, 1]).ToArray());
        CollectionAssert.AreEqual(new float[] { 66, 210 }, x.Sum([1, 2]).ToArray());
        CollectionAssert.AreEqual(new[] { 1, 3, 1 }, x.Sum([0, 2], keepDim: true).ShapeArray());
        CollectionAssert.AreEqual(new float[] { 60, 92, 124 }, x.Sum([0, 2]).ToArray());
        CollectionAssert.AreEqual(new float[] { 4, 5, 6, 7, 16, 17, 18, 19 }, x.Mean(1).ToArray());
        CollectionAssert.AreEqual(new float[] { 8, 9, 10, 11, 20, 21, 22, 23 }, x.Max(1).ToArray());
        CollectionAssert.AreEqual(new float[] { 3, 7, 11, 15, 19, 23 }, x.Max(-1).ToArray());
        CollectionAssert.AreEqual(new[] { 2, 1, 4 }, x.Max(1, keepDim: true).ShapeArray());
        CollectionAssert.AreEqual(new float[] { 20, 21, 22, 23 }, x.Max([0, 1]).ToArray());
        CollectionAssert.AreEqual(new[] { 1, 3, 1 }, x.Max([0, 2], keepDim: true).ShapeArray());
        CollectionAssert.AreEqual(new float[] { 15, 19, 23 }, x.Max([0, 2]).ToArray());
    }

    [TestMethod]
    public void Sum_OfTransposedView_UsesLogicalLayout()
    {
        var x = Tensor.Arange(6).Reshape(2, 3).Transpose(0, 1);   // [[0,3],[1,4],[2,5]]
        CollectionAssert.AreEqual(new float[] { 3, 5, 7 }, x.Sum(1).ToArray());
        CollectionAssert.AreEqual(new float[] { 3, 12 }, x.Sum(0).ToArray());
    }

    [TestMethod]
    public void LongColumnSum_KeepsFloatPrecision()
    {
        // 100000 rows of 0.1: a naive float accumulation drifts by ~1e-3 relative; double accumulation is exact to float.
        var x = Tensor.Full(0.1f, 100000, 3);
        var s = x.Sum(0).ToArray();
        foreach (var v in s) Assert.AreEqual((float)(100000 * (double)0.1f), v);
    }

    [TestMethod]
    public void Max_GradientGoesToFirstMaximum()
    {
        var x = Tensor.From([1, 5, 5, 2, 0, 7], 2, 3).RequiresGrad_();
        x.Max(1).Sum().Backward();
        CollectionAssert.AreEqual(new float[] { 0, 1, 0, 0, 0, 1 }, x.Grad!.ToArray());
    }

    [TestMethod]
    public void Reductions_Gradients_MatchFiniteDifferences()
    {
        var x = GradCheck.Param(31, 3, 4, 5);
        GradCheck.Check(t => t[0].Sum(), [x]);
        GradCheck.Check(t => t[0].Sum(1), [x]);
        GradCheck.Check(t => t[0].Sum([0, 2], keepDim: true), [x]);
        GradCheck.Check(t => t[0].Mean(-1), [x]);
        GradCheck.Check(t => t[0].Mean([0, 1]), [x]);
        GradCheck.Check(t => t[0].Max(1), [x]);
        GradCheck.Check(t => t[0].Max(2, keepDim: true), [x]);
        GradCheck.Check(t => t[0].Max([0, 2]), [x]);
        GradCheck.Check(t => t[0].Transpose(0, 2).Sum(0), [x]);
    }
}
