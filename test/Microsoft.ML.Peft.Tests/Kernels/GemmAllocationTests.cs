using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tests.Kernels;

/// <summary>
/// Below the parallel threshold a call allocates nothing once the per-thread packing buffers exist: tiny models call
/// the GEMM millions of times per epoch.
/// </summary>
[TestClass]
public sealed class GemmAllocationTests
{
    private static long AllocatedBy(Action action)
    {
        action();
        action();
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 50; i++) action();
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [TestMethod]
    public void SmallProducts_AfterWarmUp_AllocateNothing()
    {
        var random = new Random(5);
        float[] a = GemmReference.RandomMatrix(random, 64, 64, 64), b = GemmReference.RandomMatrix(random, 64, 64, 64);
        ushort[] b16 = new ushort[64 * 64];
        Half[] bh = new Half[64 * 64];
        float[] c = new float[64 * 64];

        Assert.AreEqual(0L, AllocatedBy(() => Gemm.Sgemm(false, true, 64, 64, 64, 1f, a, 64, b, 64, 0f, c, 64)), "packed fp32");
        Assert.AreEqual(0L, AllocatedBy(() => Gemm.Sgemm(true, false, 3, 64, 64, 1f, a, 64, b, 64, 1f, c, 64)), "few rows fp32");
        Assert.AreEqual(0L, AllocatedBy(() => Gemm.Sgemm(true, true, 2, 64, 64, 1f, a, 64, b, 64, 1f, c, 64)), "few rows fp32, Bᵀ");
        Assert.AreEqual(0L, AllocatedBy(() => Gemm.SgemmBf16(false, true, 64, 64, 64, 1f, a, 64, b16, 64, 0f, c, 64)), "bf16");
        Assert.AreEqual(0L, AllocatedBy(() => Gemm.SgemmF16(false, false, 64, 64, 64, 1f, a, 64, bh, 64, 0f, c, 64)), "f16");
        Assert.AreEqual(0L, AllocatedBy(() => Gemm.SgemmBatched(false, false, 16, 16, 16, 1f, a, 16, 256, b, 16, 256,
            0f, c, 16, 256, 2)), "batched");
    }
}
