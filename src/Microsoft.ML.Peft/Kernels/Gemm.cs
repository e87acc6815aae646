using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Single-precision general matrix multiply on row-major operands:
/// <c>C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C</c>, where <c>op(X)</c> is X or Xᵀ.
/// </summary>
/// <remarks>
/// <para>
/// Leading dimensions are row strides in elements: A is stored as rows of length ≥ lda (m×k when not transposed, k×m
/// when transposed), likewise B and C. When <c>beta</c> is 0, C is only written, so whatever it held (NaN included) is
/// overwritten.
/// </para>
/// <para>
/// The BF16 (raw bits, <c>ushort</c>) and F16 overloads take a frozen weight in storage precision and widen it to
/// fp32 while packing, a few rows at a time; the product is always computed and accumulated in fp32.
/// </para>
/// <para>
/// Implementation: a GotoBLAS/BLIS-style cache-blocked, panel-packed product with an AVX-512 (14×32), AVX2+FMA (6×16)
/// or scalar (4×4) register-tile micro-kernel chosen at run time, multithreaded over all cores for products above
/// about 2·10⁶ multiply-adds and single-threaded below, where thread hand-off would cost more than it saves. With
/// AVX-512, fp32 products of at most 8 rows (matrix–vector shapes) skip packing and stream B in place.
/// </para>
/// <para>
/// All methods are thread-safe and may be called concurrently; packing buffers are cached per thread, so after the
/// first call of a given size a call allocates nothing on the single-threaded path.
/// </para>
/// </remarks>
public static class Gemm
{
    /// <summary>Products with fewer multiply-adds than this run on the calling thread.</summary>
    internal const long ParallelThreshold = 1L << 21;

    /// <summary>Each extra thread needs at least this many multiply-adds to pay for itself.</summary>
    internal const long WorkPerThread = 1L << 20;

    /// <summary><c>C = alpha·op(A)·op(B) + beta·C</c> in fp32.</summary>
    /// <param name="transA">Use Aᵀ: A is stored k×m.</param>
    /// <param name="transB">Use Bᵀ: B is stored n×k.</param>
    /// <param name="m">Rows of C and op(A).</param>
    /// <param name="n">Columns of C and op(B).</param>
    /// <param name="k">Columns of op(A), rows of op(B).</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A, row-major with row stride <paramref name="lda"/>.</param>
    /// <param name="lda">Row stride of A.</param>
    /// <param name="b">B, row-major with row stride <paramref name="ldb"/>.</param>
    /// <param name="ldb">Row stride of B.</param>
    /// <param name="beta">Scale of the existing C; 0 means C is not read.</param>
    /// <param name="c">C, row-major with row stride <paramref name="ldc"/>.</param>
    /// <param name="ldc">Row stride of C.</param>
    public static void Sgemm(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc) =>
        Sgemm(GemmIsaInfo.Best, Environment.ProcessorCount, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>As <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>, with B stored as bfloat16 bits.</summary>
    public static void SgemmBf16(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<ushort> b, int ldb,
        float beta, Span<float> c, int ldc) =>
        SgemmBf16(GemmIsaInfo.Best, Environment.ProcessorCount, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>As <see cref="Sgemm(bool, bool, int, int, int, float, ReadOnlySpan{float}, int, ReadOnlySpan{float}, int, float, Span{float}, int)"/>, with B stored as IEEE half precision.</summary>
    public static void SgemmF16(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<Half> b, int ldb,
        float beta, Span<float> c, int ldc) =>
        SgemmF16(GemmIsaInfo.Best, Environment.ProcessorCount, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);

    /// <summary>
    /// <c>C = alpha·op(A)·op(B) + beta·C</c> with B supplied by a <see cref="GemmBOperand"/> that packs itself
    /// (for example a quantised weight); n and k are the operand's <see cref="GemmBOperand.Columns"/> and
    /// <see cref="GemmBOperand.Rows"/>.
    /// </summary>
    /// <param name="transA">Use Aᵀ: A is stored k×m.</param>
    /// <param name="m">Rows of C and op(A).</param>
    /// <param name="alpha">Scale of the product.</param>
    /// <param name="a">A, row-major with row stride <paramref name="lda"/>.</param>
    /// <param name="lda">Row stride of A.</param>
    /// <param name="b">The B operand.</param>
    /// <param name="beta">Scale of the existing C; 0 means C is not read.</param>
    /// <param name="c">C, row-major with row stride <paramref name="ldc"/>.</param>
    /// <param name="ldc">Row stride of C.</param>
    public static void Sgemm(
        bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda,
        GemmBOperand b, float beta, Span<float> c, int ldc) =>
        Sgemm(GemmIsaInfo.Best, Environment.ProcessorCount, transA, m, alpha, a, lda, b, beta, c, ldc);

    /// <summary>
    /// <paramref name="batchCount"/> independent products; operand i starts at i·stride in each span (a stride of 0
    /// for A or B shares that operand across the batch). Small products run in parallel across the batch, large ones
    /// one after another, each using all cores.
    /// </summary>
    public static void SgemmBatched(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batchCount) =>
        SgemmBatched(GemmIsaInfo.Best, Environment.ProcessorCount, transA, transB, m, n, k,
            alpha, a, lda, strideA, b, ldb, strideB, beta, c, ldc, strideC, batchCount);

    internal static unsafe void Sgemm(GemmIsa isa, int maxThreads,
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        CheckOperands(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (float* pb = &MemoryMarshal.GetReference(b))
        {
            if (SkinnyGemm.Applies(isa, m) && n > 0 && k > 0)
            {
                fixed (float* pa = &MemoryMarshal.GetReference(a))
                fixed (float* pc = &MemoryMarshal.GetReference(c))
                {
                    SkinnyGemm.Run(new GemmCall(transA, m, n, k, alpha, pa, lda, beta, pc, ldc), pb, ldb, transB, maxThreads);
                }
                return;
            }
            Run(isa, maxThreads, transA, m, n, k, alpha, a, lda, new F32BSource(pb, ldb, transB), beta, c, ldc);
        }
    }

    internal static unsafe void SgemmBf16(GemmIsa isa, int maxThreads,
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<ushort> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        CheckOperands(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (ushort* pb = &MemoryMarshal.GetReference(b))
        {
            Run(isa, maxThreads, transA, m, n, k, alpha, a, lda, new WideningBSource<ushort, Bf16Format>(pb, ldb, transB), beta, c, ldc);
        }
    }

    internal static unsafe void SgemmF16(GemmIsa isa, int maxThreads,
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, ReadOnlySpan<Half> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        CheckOperands(transA, transB, m, n, k, a.Length, lda, b.Length, ldb, c.Length, ldc);
        fixed (Half* pb = &MemoryMarshal.GetReference(b))
        {
            Run(isa, maxThreads, transA, m, n, k, alpha, a, lda, new WideningBSource<Half, HalfFormat>(pb, ldb, transB), beta, c, ldc);
        }
    }

    internal static void Sgemm(GemmIsa isa, int maxThreads,
        bool transA, int m, float alpha, ReadOnlySpan<float> a, int lda,
        GemmBOperand b, float beta, Span<float> c, int ldc)
    {
        ArgumentNullException.ThrowIfNull(b);
        int n = b.Columns, k = b.Rows;
        GemmArguments.CheckDimensions(m, n, k);
        GemmArguments.CheckMatrix("a", a.Length, transA ? k : m, transA ? m : k, lda);
        GemmArguments.CheckMatrix("c", c.Length, m, n, ldc);
        Run(isa, maxThreads, transA, m, n, k, alpha, a, lda, new ManagedBSource(b), beta, c, ldc);
    }

    internal static void SgemmBatched(GemmIsa isa, int maxThreads,
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batchCount) =>
        BatchedGemm.Run(isa, maxThreads, transA, transB, m, n, k, alpha, a, lda, strideA, b, ldb, strideB,
            beta, c, ldc, strideC, batchCount);

    internal static void CheckOperands(bool transA, bool transB, int m, int n, int k,
        int aLength, int lda, int bLength, int ldb, int cLength, int ldc)
    {
        GemmArguments.CheckDimensions(m, n, k);
        GemmArguments.CheckMatrix("a", aLength, transA ? k : m, transA ? m : k, lda);
        GemmArguments.CheckMatrix("b", bLength, transB ? n : k, transB ? k : n, ldb);
        GemmArguments.CheckMatrix("c", cLength, m, n, ldc);
    }

    /// <summary>The number of threads worth using for an m×n×k product.</summary>
    internal static int ThreadsFor(int m, int n, int k, int maxThreads)
    {
        long work = (long)m * n * k;
        if (work < ParallelThreshold || maxThreads <= 1) return 1;
        return (int)Math.Clamp(work / WorkPerThread, 1, maxThreads);
    }

    /// <summary>Validated operands in; pins A and C and hands the product to the kernel chosen by <paramref name="isa"/>.</summary>
    private static unsafe void Run<TB>(GemmIsa isa, int maxThreads, bool transA, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, TB b, float beta, Span<float> c, int ldc)
        where TB : struct, IBPanelSource
    {
        if (!GemmIsaInfo.IsSupported(isa))
            throw new PlatformNotSupportedException($"This processor cannot run the {isa} GEMM kernel.");
        if (m == 0 || n == 0) return;
        fixed (float* pa = &MemoryMarshal.GetReference(a))
        fixed (float* pc = &MemoryMarshal.GetReference(c))
        {
            if (k == 0)
            {
                ScaleC(m, n, beta, pc, ldc);
                return;
            }

            var call = new GemmCall(transA, m, n, k, alpha, pa, lda, beta, pc, ldc);
            int threads = ThreadsFor(m, n, k, maxThreads);
            switch (isa)
            {
                case GemmIsa.Avx512: Run<MicroKernelAvx512, TB>(call, b, threads); break;
                case GemmIsa.Avx2: Run<MicroKernelAvx2, TB>(call, b, threads); break;
                default: Run<MicroKernelScalar, TB>(call, b, threads); break;
            }
        }
    }

    private static void Run<TKernel, TB>(in GemmCall call, TB b, int threads)
        where TKernel : struct, IMicroKernel
        where TB : struct, IBPanelSource
    {
        if (threads <= 1)
            GemmDriver<TKernel>.RunSingleThreaded(call, b);
        else if (ColumnSliceGemm<TKernel, TB>.Suits(call.N, threads))
            ColumnSliceGemm<TKernel, TB>.Run(call, b, threads);
        else
            ParallelGemm<TKernel, TB>.Run(call, b, threads);
    }

    /// <summary>k = 0: the product is empty, so C = beta·C (and 0 when beta is 0, without reading C).</summary>
    private static unsafe void ScaleC(int m, int n, float beta, float* c, nint ldc)
    {
        for (int i = 0; i < m; i++)
        {
            var row = new Span<float>(c + i * ldc, n);
            if (beta == 0f) row.Clear();
            else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
        }
    }
}
