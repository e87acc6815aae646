using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>
/// Every micro-kernel (scalar, AVX2, AVX-512, forced through the internal overload) against the double reference on odd
/// shapes that leave partial register tiles and partial k/m/n blocks, for all four transpose combinations.
/// </summary>
[TestClass]
public sealed class SgemmShapeTests
{
    private static readonly int[] OddSizes = [1, 3, 17, 31, 65, 127, 129, 257];

    internal static void RequireIsa(GemmIsa isa)
    {
        if (!GemmIsaInfo.IsSupported(isa)) Assert.Inconclusive($"{isa} is not supported on this processor.");
    }

    /// <summary>One product with random operands, ld = width + padding, checked against the reference.</summary>
    internal static void CheckOne(GemmIsa isa, int maxThreads, bool transA, bool transB, int m, int n, int k,
        float alpha, float beta, int pad, Random random)
    {
        int lda = (transA ? m : k) + pad, ldb = (transB ? k : n) + pad, ldc = n + pad;
        float[] a = GemmReference.RandomMatrix(random, transA ? k : m, transA ? m : k, lda);
        float[] b = GemmReference.RandomMatrix(random, transB ? n : k, transB ? k : n, ldb);
        float[] c0 = beta == 0f ? GemmReference.NaNMatrix(m, ldc) : GemmReference.RandomMatrix(random, m, n, ldc);
        float[] c = (float[])c0.Clone();
        Gemm.Sgemm(isa, maxThreads, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        GemmReference.AssertProduct($"{isa}/{maxThreads}t", transA, transB, m, n, k, alpha, a, lda,
            GemmReference.OpB(b, transB, ldb), beta, c0, c, ldc);
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void OddShapes_AllTransposeCombinations_MatchDoubleReference(int isaValue)
    {
        var isa = (GemmIsa)isaValue;
        RequireIsa(isa);
        var random = new Random(1000 + isaValue);
        for (int trial = 0; trial < 24; trial++)
        {
            int m = OddSizes[random.Next(OddSizes.Length)];
            int n = OddSizes[random.Next(OddSizes.Length)];
            int k = OddSizes[random.Next(OddSizes.Length)];
            bool transA = (trial & 1) != 0, transB = (trial & 2) != 0;
            CheckOne(isa, 1, transA, transB, m, n, k, 1f, 0f, pad: trial % 3, random);
        }
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void EveryTileRemainder_SmallShapes_MatchDoubleReference(int isaValue)
    {
        // m = 1..30 and n = 1..33 cover every partial row count of the 4-, 6- and 14-row tiles (for AVX-512, m = 15..27
        // reach each edge-row variant through the packed path; m ≤ 8 takes the unpacked skinny path) and every partial
        // column count of the 4-, 16- and 32-column tiles.
        var isa = (GemmIsa)isaValue;
        RequireIsa(isa);
        var random = new Random(2000 + isaValue);
        for (int m = 1; m <= 30; m++)
        {
            for (int n = 1; n <= 33; n += 2 + (m % 2))
            {
                bool transA = (m & 1) != 0, transB = (n & 2) != 0;
                CheckOne(isa, 1, transA, transB, m, n, k: 1 + (m * n) % 40, 1f, 0f, pad: m % 2, random);
            }
        }
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void LargerThanOneCacheBlock_InEveryDimension_MatchesDoubleReference(int isaValue)
    {
        // k = 600 spans several kc slices (beta applied once, later slices accumulate), m = 400 several mc blocks,
        // n = 4200 several nc panels, for every kernel's blocking (KC ≤ 384, MC ≤ 336, NC ≤ 4096).
        var isa = (GemmIsa)isaValue;
        RequireIsa(isa);
        var random = new Random(3000 + isaValue);
        CheckOne(isa, 1, false, true, 400, 40, 600, 0.75f, -0.5f, pad: 1, random);
        CheckOne(isa, 1, true, false, 9, 4200, 33, 1f, 1f, pad: 0, random);
    }

    [TestMethod]
    [DataRow((int)GemmIsa.Scalar)]
    [DataRow((int)GemmIsa.Avx2)]
    [DataRow((int)GemmIsa.Avx512)]
    public void Multithreaded_RowAndColumnSplits_MatchDoubleReference(int isaValue)
    {
        // Above the parallel threshold: a tall product (threads split rows), short wide ones (threads split columns
        // and share A rows; on AVX-512 m = 5 takes the skinny path, m = 20 the packed one), and three and four threads
        // on odd sizes so the splits are uneven.
        var isa = (GemmIsa)isaValue;
        RequireIsa(isa);
        var random = new Random(4000 + isaValue);
        CheckOne(isa, 2, false, false, 257, 129, 127, 1f, 0f, pad: 0, random);
        CheckOne(isa, 2, true, true, 5, 2049, 300, -1.25f, 0.5f, pad: 2, random);
        CheckOne(isa, 2, false, true, 20, 2049, 300, 1f, 0f, pad: 1, random);
        CheckOne(isa, 3, false, true, 131, 257, 129, 2f, 0f, pad: 1, random);
        CheckOne(isa, 4, true, false, 300, 33, 520, 1f, 1f, pad: 3, random);
        // Wide enough for column slices (≥ 4 panels per thread), uneven over three threads, with beta ≠ 0.
        CheckOne(isa, 3, false, true, 70, 1000, 260, 0.5f, -1f, pad: 1, random);
    }

    [TestMethod]
    [DataRow(2)]
    [DataRow(3)]
    public void ColumnSlices_GiveTheOneThreadResult_BitForBit(int threads)
    {
        // The slices keep the k blocking of the one-thread loop nest, so every element sums in the same order.
        RequireIsa(GemmIsa.Avx512);
        var random = new Random(77 + threads);
        int m = 64, n = 1000, k = 700;
        float[] a = [.. Enumerable.Range(0, m * k).Select(_ => (float)(random.NextDouble() - 0.5))];
        float[] b = [.. Enumerable.Range(0, n * k).Select(_ => (float)(random.NextDouble() - 0.5))];
        float[] one = new float[m * n], many = new float[m * n];
        Assert.IsTrue(Gemm.ThreadsFor(m, n, k, threads) == threads, "the product is above the parallel threshold");
        Gemm.Sgemm(GemmIsa.Avx512, 1, false, true, m, n, k, 1f, a, k, b, k, 0f, one, n);
        Gemm.Sgemm(GemmIsa.Avx512, threads, false, true, m, n, k, 1f, a, k, b, k, 0f, many, n);
        CollectionAssert.AreEqual(one, many);
    }
}
