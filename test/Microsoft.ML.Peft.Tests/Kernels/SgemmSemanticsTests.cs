using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>alpha/beta semantics, degenerate sizes and hand-computed products through the public entry point.</summary>
[TestClass]
public sealed class SgemmSemanticsTests
{
    [TestMethod]
    public void TwoByTwo_MatchesHandComputedProduct()
    {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = new float[4];
        Gemm.Sgemm(false, false, 2, 2, 2, 1f, a, 2, b, 2, 0f, c, 2);
        CollectionAssert.AreEqual(new float[] { 19, 22, 43, 50 }, c);
    }

    [TestMethod]
    public void TransposedOperands_AlphaBeta_MatchHandComputedValues()
    {
        // A stored 2×3 used as Aᵀ (3×2), B stored 2×2 used as Bᵀ: Aᵀ = [1 4; 2 5; 3 6], Bᵀ = [1 3; 2 4].
        // Aᵀ·Bᵀ = [9 19; 12 26; 15 33]; C = 2·that − 1·[1 1; 1 1; 1 1].
        float[] a = [1, 2, 3, 4, 5, 6], b = [1, 2, 3, 4], c = [1, 1, 1, 1, 1, 1];
        Gemm.Sgemm(true, true, 3, 2, 2, 2f, a, 3, b, 2, -1f, c, 2);
        CollectionAssert.AreEqual(new float[] { 17, 37, 23, 51, 29, 65 }, c);
    }

    [TestMethod]
    [DataRow(1f, 0f)]
    [DataRow(-0.5f, 0f)]
    [DataRow(1f, 1f)]
    [DataRow(2.5f, -1.5f)]
    [DataRow(0f, 0.25f)]
    public void AlphaBeta_AllTransposeCombinations_MatchDoubleReference(float alpha, float beta)
    {
        var random = new Random(7);
        foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
                SgemmShapeTests.CheckOne(GemmIsaInfo.Best, 1, transA, transB, 37, 45, 29, alpha, beta, pad: 5, random);
    }

    [TestMethod]
    public void BetaZero_NaNInC_IsOverwritten()
    {
        float[] a = [1, 2], b = [3, 4], c = [float.NaN, float.PositiveInfinity, float.NaN, float.NaN];
        Gemm.Sgemm(false, false, 2, 2, 1, 1f, a, 1, b, 2, 0f, c, 2);
        CollectionAssert.AreEqual(new float[] { 3, 4, 6, 8 }, c);
    }

    [TestMethod]
    public void KIsZero_ScalesCByBeta_AndClearsWhenBetaIsZero()
    {
        float[] c = [1, 2, 3, 4];
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, [], 0, [], 2, 0.5f, c, 2);
        CollectionAssert.AreEqual(new float[] { 0.5f, 1, 1.5f, 2 }, c);

        float[] nan = [float.NaN, float.NaN, float.NaN, float.NaN];
        Gemm.Sgemm(false, false, 2, 2, 0, 1f, [], 0, [], 2, 0f, nan, 2);
        CollectionAssert.AreEqual(new float[] { 0, 0, 0, 0 }, nan);
    }

    [TestMethod]
    public void EmptyOutput_DoesNothing()
    {
        float[] c = [42];
        Gemm.Sgemm(false, false, 0, 1, 3, 1f, [], 3, [1, 2, 3], 1, 0f, c, 1);
        Gemm.Sgemm(false, false, 1, 0, 3, 1f, [1, 2, 3], 3, [], 0, 0f, c, 0);
        Assert.AreEqual(42f, c[0]);
    }

    [TestMethod]
    public void PublicEntryPoint_LargeProduct_MatchesDoubleReference()
    {
        // Goes through the default thread count and the best kernel, as the library's callers do.
        var random = new Random(11);
        int m = 150, n = 170, k = 190;
        float[] a = GemmReference.RandomMatrix(random, m, k, k), b = GemmReference.RandomMatrix(random, n, k, k);
        float[] c0 = GemmReference.NaNMatrix(m, n), c = (float[])c0.Clone();
        Gemm.Sgemm(false, true, m, n, k, 1f, a, k, b, k, 0f, c, n);
        GemmReference.AssertProduct("public", false, true, m, n, k, 1f, a, k, GemmReference.OpB(b, true, k), 0f, c0, c, n);
    }

    [TestMethod]
    public void RepeatedCalls_ReuseBuffers_GiveIdenticalResults()
    {
        // The packing buffers are cached per thread: a second call of a different shape, then the first again, must
        // not see stale data.
        var random = new Random(12);
        float[] a = GemmReference.RandomMatrix(random, 40, 50, 50), b = GemmReference.RandomMatrix(random, 50, 60, 60);
        float[] first = new float[40 * 60], again = new float[40 * 60], other = new float[7 * 9];
        Gemm.Sgemm(false, false, 40, 60, 50, 1f, a, 50, b, 60, 0f, first, 60);
        Gemm.Sgemm(false, false, 7, 9, 5, 1f, a, 50, b, 60, 0f, other, 9);
        Gemm.Sgemm(false, false, 40, 60, 50, 1f, a, 50, b, 60, 0f, again, 60);
        CollectionAssert.AreEqual(first, again);
    }
}
