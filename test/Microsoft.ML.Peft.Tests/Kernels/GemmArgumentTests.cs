using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>Bad operands are rejected before any work, with the operand and shape named.</summary>
[TestClass]
public sealed class GemmArgumentTests
{
    [TestMethod]
    public void ShortA_ThrowsNamingAAndShape()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            Gemm.Sgemm(false, false, 3, 2, 4, 1f, new float[11], 4, new float[8], 2, 0f, new float[6], 2));
        StringAssert.Contains(error.Message, "'a'");
        StringAssert.Contains(error.Message, "3×4");
    }

    [TestMethod]
    public void ShortTransposedB_ThrowsNamingB()
    {
        // Bᵀ stored n×k = 2×4 needs 8 elements.
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            Gemm.Sgemm(false, true, 3, 2, 4, 1f, new float[12], 4, new float[7], 4, 0f, new float[6], 2));
        StringAssert.Contains(error.Message, "'b'");
        StringAssert.Contains(error.Message, "2×4");
    }

    [TestMethod]
    public void LeadingDimensionBelowWidth_ThrowsNamingC()
    {
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            Gemm.Sgemm(false, false, 3, 2, 4, 1f, new float[12], 4, new float[8], 2, 0f, new float[6], 1));
        StringAssert.Contains(error.Message, "'c'");
    }

    [TestMethod]
    public void NegativeDimension_Throws() =>
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            Gemm.Sgemm(false, false, -1, 2, 4, 1f, new float[12], 4, new float[8], 2, 0f, new float[6], 2));

    [TestMethod]
    public void ShortHalfB_ThrowsNamingB()
    {
        var error = Assert.ThrowsExactly<ArgumentException>(() =>
            Gemm.SgemmF16(false, false, 1, 2, 2, 1f, new float[2], 2, new Half[3], 2, 0f, new float[2], 2));
        StringAssert.Contains(error.Message, "'b'");
    }
}
