using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>Strided batches: small products (parallel across the batch) and large ones (one after another).</summary>
[TestClass]
public sealed class SgemmBatchedTests
{
    private static void CheckBatch(GemmIsa isa, int batch, bool transA, bool transB, int m, int n, int k, bool shareB, int seed)
    {
        var random = new Random(seed);
        int lda = (transA ? m : k) + 1, ldb = (transB ? k : n) + 2, ldc = n + 1;
        int sizeA = (transA ? k : m) * lda, sizeB = (transB ? n : k) * ldb, sizeC = m * ldc;
        long strideA = sizeA + 3, strideB = shareB ? 0 : sizeB, strideC = sizeC + 5;
        float[] a = GemmReference.RandomMatrix(random, 1, (int)strideA * batch, (int)strideA * batch);
        float[] b = GemmReference.RandomMatrix(random, 1, sizeB * (shareB ? 1 : batch), sizeB * (shareB ? 1 : batch));
        float[] c0 = GemmReference.RandomMatrix(random, 1, (int)strideC * batch, (int)strideC * batch);
        float[] c = (float[])c0.Clone();
        Gemm.SgemmBatched(isa, 2, transA, transB, m, n, k, 0.5f, a, lda, strideA, b, ldb, strideB, -1f, c, ldc, strideC, batch);

        for (int i = 0; i < batch; i++)
        {
            float[] ai = a.AsSpan((int)(i * strideA), sizeA).ToArray();
            float[] bi = b.AsSpan((int)(i * strideB), sizeB).ToArray();
            float[] ci0 = c0.AsSpan((int)(i * strideC), sizeC).ToArray();
            float[] ci = c.AsSpan((int)(i * strideC), sizeC).ToArray();
            GemmReference.AssertProduct($"batch {i}", transA, transB, m, n, k, 0.5f, ai, lda,
                GemmReference.OpB(bi, transB, ldb), -1f, ci0, ci, ldc);
        }

        // Elements between the batch's C matrices are untouched.
        for (int i = 0; i < batch; i++)
            for (long gap = i * strideC + sizeC; gap < (i + 1) * strideC; gap++)
                Assert.AreEqual(BitConverter.SingleToInt32Bits(c0[gap]), BitConverter.SingleToInt32Bits(c[gap]), $"gap element {gap}");
    }

    [TestMethod]
    public void SmallProducts_ParallelAcrossBatch_MatchDoubleReference()
    {
        CheckBatch(GemmIsaInfo.Best, 37, false, true, 16, 24, 32, shareB: false, seed: 1);
        CheckBatch(GemmIsaInfo.Best, 64, true, false, 9, 17, 40, shareB: true, seed: 2);
    }

    [TestMethod]
    public void LargeProducts_OneAfterAnother_MatchDoubleReference() =>
        CheckBatch(GemmIsaInfo.Best, 2, false, false, 140, 130, 129, shareB: false, seed: 3);

    [TestMethod]
    public void ScalarKernel_Batched_MatchesDoubleReference() =>
        CheckBatch(GemmIsa.Scalar, 5, true, true, 7, 11, 13, shareB: false, seed: 4);

    [TestMethod]
    public void OverlappingOutputs_Throw()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() => Gemm.SgemmBatched(false, false, 2, 2, 2, 1f,
            new float[8], 2, 4, new float[8], 2, 4, 0f, new float[8], 2, 2, 2));
        StringAssert.Contains(error.Message, "'c'");
    }
}
