using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Strided batches of independent products (attention heads, per-sample products). Small products run in parallel
/// across the batch, each single-threaded, because a tiny product cannot keep several cores busy on its own; large
/// ones run one after another with all cores each.
/// </summary>
internal static unsafe class BatchedGemm
{
    public static void Run(GemmIsa isa, int maxThreads,
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batchCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchCount);
        GemmArguments.CheckDimensions(m, n, k);
        long extentA = Extent(transA ? k : m, transA ? m : k, lda, "a");
        long extentB = Extent(transB ? n : k, transB ? k : n, ldb, "b");
        long extentC = Extent(m, n, ldc, "c");
        CheckBatch("a", a.Length, extentA, strideA, batchCount, mayAlias: true);
        CheckBatch("b", b.Length, extentB, strideB, batchCount, mayAlias: true);
        CheckBatch("c", c.Length, extentC, strideC, batchCount, mayAlias: false);
        if (batchCount == 0 || m == 0 || n == 0) return;

        long work = (long)m * n * k;
        int threads = work >= Gemm.ParallelThreshold ? 1
            : (int)Math.Clamp(work * batchCount / Gemm.WorkPerThread, 1, Math.Min(maxThreads, batchCount));
        if (threads <= 1)
        {
            for (int i = 0; i < batchCount; i++)
            {
                Gemm.Sgemm(isa, maxThreads, transA, transB, m, n, k, alpha,
                    a.Slice((int)(i * strideA), (int)extentA), lda, b.Slice((int)(i * strideB), (int)extentB), ldb,
                    beta, c.Slice((int)(i * strideC), (int)extentC), ldc);
            }
            return;
        }

        fixed (float* pa = &MemoryMarshal.GetReference(a))
        fixed (float* pb = &MemoryMarshal.GetReference(b))
        fixed (float* pc = &MemoryMarshal.GetReference(c))
        {
            var batch = new Batch(isa, transA, transB, m, n, k, alpha, pa, lda, strideA, extentA, pb, ldb, strideB, extentB,
                beta, pc, ldc, strideC, extentC);
            RunParallel(batch, batchCount, threads);
        }
    }

    /// <summary>Thread t runs the t-th share of the batch. Kept apart so that only this path allocates a closure.</summary>
    private static void RunParallel(Batch batch, int batchCount, int threads) =>
        Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
        {
            int first = (int)((long)batchCount * t / threads), last = (int)((long)batchCount * (t + 1) / threads);
            for (int i = first; i < last; i++) batch.Run(i);
        });

    /// <summary>The pinned operands of a batch; product i runs single-threaded on the calling thread.</summary>
    private readonly struct Batch(GemmIsa isa, bool transA, bool transB, int m, int n, int k, float alpha,
        float* a, int lda, long strideA, long extentA, float* b, int ldb, long strideB, long extentB,
        float beta, float* c, int ldc, long strideC, long extentC)
    {
        public void Run(int i) =>
            Gemm.Sgemm(isa, 1, transA, transB, m, n, k, alpha,
                new ReadOnlySpan<float>(a + i * strideA, (int)extentA), lda,
                new ReadOnlySpan<float>(b + i * strideB, (int)extentB), ldb,
                beta, new Span<float>(c + i * strideC, (int)extentC), ldc);
    }

    /// <summary>Elements spanned by one rows×columns matrix with the given row stride (checked for consistency).</summary>
    private static long Extent(int rows, int columns, int leadingDimension, string name)
    {
        GemmArguments.CheckMatrix(name, int.MaxValue, rows, columns, leadingDimension);
        return rows == 0 || columns == 0 ? 0 : (long)(rows - 1) * leadingDimension + columns;
    }

    private static void CheckBatch(string name, int length, long extent, long stride, int batchCount, bool mayAlias)
    {
        if (stride < 0)
            throw new ArgumentOutOfRangeException(name, $"Batch stride of '{name}' is {stride}; strides must be non-negative.");
        if (batchCount == 0 || extent == 0) return;
        if (!mayAlias && batchCount > 1 && stride < extent)
        {
            throw new ArgumentException(
                $"Batch stride of '{name}' ({stride}) is smaller than one matrix ({extent} elements): the outputs would overlap.", name);
        }
        long needed = (batchCount - 1) * stride + extent;
        if (length < needed)
        {
            throw new ArgumentException(
                $"Batched matrix '{name}' needs {needed} elements ({batchCount} matrices of {extent}, stride {stride}) but has {length}.", name);
        }
    }
}
