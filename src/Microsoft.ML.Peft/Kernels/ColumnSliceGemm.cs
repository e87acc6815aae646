namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Multithreaded product split by columns of C: thread t takes the t-th slice of B's columns (whole NR panels) and runs
/// the single-threaded loop nest on it, so every B panel is packed by the thread that multiplies it and is read from
/// that thread's own caches.
/// </summary>
/// <remarks>
/// <para>
/// Why: <see cref="ParallelGemm{TKernel, TB}"/> shares every packed kc×nc B panel (3 MB) between the threads. Each
/// thread then reads panels the other one wrote, and both write 3 MB per step beyond their L2. The cost showed most
/// where packing is work. Decoding 4-bit weights took 2.6× as long per element on two threads as on one, and the
/// product ran at 0.83–0.92 of fp32. With column slices, fp32 itself runs 6–17% faster on every shape measured
/// (256×2048×2048 to 4096³), and the 4-bit product matches or beats it (docs/BENCHMARKS.md, GEMM and QLoRA (ii-e)).
/// </para>
/// <para>
/// The price is that each slice packs all of A again: m×k per slice, against k × (slice width) of B and m × k × (slice
/// width) multiply-adds, so slices are kept at least <see cref="MinPanelsPerSlice"/> panels wide. Products with fewer
/// columns than that per thread (LoRA's rank-r products, for one) stay with the row split. One static slice per
/// thread: four smaller slices claimed dynamically (which would let the others take over from a descheduled thread)
/// measured 5–15% slower on a quiet machine, because of the extra A packing.
/// </para>
/// </remarks>
internal static unsafe class ColumnSliceGemm<TKernel, TB>
    where TKernel : struct, IMicroKernel
    where TB : struct, IBPanelSource
{
    /// <summary>Narrowest slice, in NR-column panels (128 columns with the AVX-512 kernel).</summary>
    public const int MinPanelsPerSlice = 4;

    /// <summary>Whether an n-column product is wide enough to give every thread a slice.</summary>
    public static bool Suits(int n, int threads) => (n + TKernel.NR - 1) / TKernel.NR >= threads * MinPanelsPerSlice;

    public static void Run(in GemmCall call, TB b, int threads)
    {
        int panels = (call.N + TKernel.NR - 1) / TKernel.NR;
        var whole = call;
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int j0 = (int)((long)panels * t / threads) * TKernel.NR;
            int j1 = Math.Min(whole.N, (int)((long)panels * (t + 1) / threads) * TKernel.NR);
            var slice = new GemmCall(whole.TransA, whole.M, j1 - j0, whole.K, whole.Alpha, whole.A, whole.Lda, whole.Beta, whole.C + j0, whole.Ldc);
            GemmDriver<TKernel>.RunSingleThreaded(slice, new ColumnOffsetBSource<TB>(b, j0));
        });
    }
}

/// <summary>Columns [offset, …) of another B source.</summary>
internal readonly unsafe struct ColumnOffsetBSource<TB>(TB inner, int offset) : IBPanelSource
    where TB : struct, IBPanelSource
{
    public int RowGranularity => inner.RowGranularity;

    public void Pack(int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa) => inner.Pack(k0, kc, n0 + offset, nc, nr, dest, isa);
}
