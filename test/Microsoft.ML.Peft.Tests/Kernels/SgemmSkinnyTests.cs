using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>
/// The unpacked AVX-512 path for products of at most 8 rows (matrix–vector shapes): every row count, column counts
/// that leave 64-, 16- and 4-wide remainders, depths that leave a 16-wide remainder, both layouts of A and B.
/// </summary>
[TestClass]
public sealed class SgemmSkinnyTests
{
    [TestMethod]
    public void RowsOneToEight_OddWidthsAndDepths_MatchDoubleReference()
    {
        SgemmShapeTests.RequireIsa(GemmIsa.Avx512);
        Assert.IsTrue(SkinnyGemm.Applies(GemmIsa.Avx512, 8));
        int[] widths = [1, 5, 63, 64, 65, 130, 211];
        int[] depths = [1, 15, 16, 17, 100];
        var random = new Random(8000);
        for (int m = 1; m <= SkinnyGemm.MaxRows; m++)
        {
            for (int trial = 0; trial < 24; trial++)
            {
                int n = widths[random.Next(widths.Length)], k = depths[random.Next(depths.Length)];
                bool transA = (trial & 1) != 0, transB = (trial & 2) != 0;
                float beta = trial % 3 == 0 ? 0f : -0.5f;
                SgemmShapeTests.CheckOne(GemmIsa.Avx512, 1, transA, transB, m, n, k, 1.5f, beta, pad: trial % 2, random);
            }
        }
    }

    [TestMethod]
    public void LargeSkinnyProduct_ThreadsSplitColumns_MatchesDoubleReference()
    {
        // 5 × 1000 × 600 = 3·10⁶ multiply-adds: above the parallel threshold, so two threads take column ranges.
        SgemmShapeTests.RequireIsa(GemmIsa.Avx512);
        var random = new Random(8001);
        foreach (bool transA in new[] { false, true })
            foreach (bool transB in new[] { false, true })
                SgemmShapeTests.CheckOne(GemmIsa.Avx512, 2, transA, transB, 5, 1000, 600, 1f, 0f, pad: 3, random);
    }
}
