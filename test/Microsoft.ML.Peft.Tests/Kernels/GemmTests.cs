using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

[TestClass]
public sealed class GemmSmokeTests
{
    [TestMethod]
    public void TwoByTwo_MatchesHandComputedProduct()
    {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        float[] a = [1, 2, 3, 4], b = [5, 6, 7, 8], c = new float[4];
        Gemm.Sgemm(false, false, 2, 2, 2, 1f, a, 2, b, 2, 0f, c, 2);
        CollectionAssert.AreEqual(new float[] { 19, 22, 43, 50 }, c);
    }
}
