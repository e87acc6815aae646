using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// AVX-512F micro-kernel: a 14×32 tile of C held in 28 zmm accumulators (2 vectors of 16 floats per row).
/// </summary>
/// <remarks>
/// Why this shape: AVX-512 has 32 vector registers; 28 accumulators + 2 B vectors + 1 broadcast A value fit exactly, and
/// 28 independent FMA chains hide the FMA latency (4 cycles × 2 pipes needs ≥ 8). Each k step loads 2 B vectors and
/// broadcasts 14 A values for 28 FMAs (0.57 loads per FMA), so the two FMA pipes, not the load ports, set the pace.
/// Packed B rows are 128 bytes, 64-byte aligned, so each B load is one aligned cache line.
/// Blocking (Zen 5: 48 KB L1D, 1 MB L2): a kc×NR micro-panel of B is 384·32·4 = 48 KB and stays near L1 while the ir
/// loop runs over the A block, which at 336×384 floats (516 KB) sits in L2; a kc×nc panel of B is 3 MB in L3. kc from
/// 256 to 512 measured within 5% of each other; 384 was at the top on the 2048³ and 4096³ shapes.
/// Edge tiles with fewer rows run the same code instantiated for the next even row count (the JIT drops the other
/// rows), so m = 16 costs 14 + 2 rows of work rather than 2 × 14.
/// </remarks>
internal readonly unsafe struct MicroKernelAvx512 : IMicroKernel
{
    public static int MR => 14;

    public static int NR => 32;

    public static int KC => 384;

    public static int MC => 14 * 24;

    public static int NC => 32 * 64;

    public static GemmIsa Isa => GemmIsa.Avx512;

    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta) =>
        Tile<Rows14>(MR, kc, a, b, c, ldc, alpha, beta);

    public static void RunRows(int height, int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        switch (height)
        {
            case <= 2: Tile<Rows2>(height, kc, a, b, c, ldc, alpha, beta); break;
            case <= 4: Tile<Rows4>(height, kc, a, b, c, ldc, alpha, beta); break;
            case <= 6: Tile<Rows6>(height, kc, a, b, c, ldc, alpha, beta); break;
            case <= 8: Tile<Rows8>(height, kc, a, b, c, ldc, alpha, beta); break;
            case <= 10: Tile<Rows10>(height, kc, a, b, c, ldc, alpha, beta); break;
            case <= 12: Tile<Rows12>(height, kc, a, b, c, ldc, alpha, beta); break;
            default: Tile<Rows14>(height, kc, a, b, c, ldc, alpha, beta); break;
        }
    }

    /// <summary>
    /// Accumulates <typeparamref name="TRows"/> rows of the tile (A panels keep their stride of MR) and writes the first
    /// <paramref name="height"/> ≤ TRows of them to C.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TRows>(int height, int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
        where TRows : struct, IRowCount
    {
        int rows = TRows.Value;

        // Fetch the C tile into L2 while the k loop runs. Not L1: with a power-of-two ldc (4096 floats = 16 KB) all rows
        // of the tile fall in the same L1 set and would evict each other before the store phase; L2 spreads them.
        Prefetch(c + 0 * ldc);
        if (height > 1) Prefetch(c + 1 * ldc);
        if (height > 2) Prefetch(c + 2 * ldc);
        if (height > 3) Prefetch(c + 3 * ldc);
        if (height > 4) Prefetch(c + 4 * ldc);
        if (height > 5) Prefetch(c + 5 * ldc);
        if (height > 6) Prefetch(c + 6 * ldc);
        if (height > 7) Prefetch(c + 7 * ldc);
        if (height > 8) Prefetch(c + 8 * ldc);
        if (height > 9) Prefetch(c + 9 * ldc);
        if (height > 10) Prefetch(c + 10 * ldc);
        if (height > 11) Prefetch(c + 11 * ldc);
        if (height > 12) Prefetch(c + 12 * ldc);
        if (height > 13) Prefetch(c + 13 * ldc);

        Vector512<float>
            c0x0 = default, c0x1 = default,
            c1x0 = default, c1x1 = default,
            c2x0 = default, c2x1 = default,
            c3x0 = default, c3x1 = default,
            c4x0 = default, c4x1 = default,
            c5x0 = default, c5x1 = default,
            c6x0 = default, c6x1 = default,
            c7x0 = default, c7x1 = default,
            c8x0 = default, c8x1 = default,
            c9x0 = default, c9x1 = default,
            c10x0 = default, c10x1 = default,
            c11x0 = default, c11x1 = default,
            c12x0 = default, c12x1 = default,
            c13x0 = default, c13x1 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Avx512F.LoadAlignedVector512(b);
            Vector512<float> b1 = Avx512F.LoadAlignedVector512(b + 16);
            Vector512<float> ai;
                ai = Vector512.Create(a[0]); c0x0 = Avx512F.FusedMultiplyAdd(ai, b0, c0x0); c0x1 = Avx512F.FusedMultiplyAdd(ai, b1, c0x1);
                if (rows > 1) { ai = Vector512.Create(a[1]); c1x0 = Avx512F.FusedMultiplyAdd(ai, b0, c1x0); c1x1 = Avx512F.FusedMultiplyAdd(ai, b1, c1x1); }
                if (rows > 2) { ai = Vector512.Create(a[2]); c2x0 = Avx512F.FusedMultiplyAdd(ai, b0, c2x0); c2x1 = Avx512F.FusedMultiplyAdd(ai, b1, c2x1); }
                if (rows > 3) { ai = Vector512.Create(a[3]); c3x0 = Avx512F.FusedMultiplyAdd(ai, b0, c3x0); c3x1 = Avx512F.FusedMultiplyAdd(ai, b1, c3x1); }
                if (rows > 4) { ai = Vector512.Create(a[4]); c4x0 = Avx512F.FusedMultiplyAdd(ai, b0, c4x0); c4x1 = Avx512F.FusedMultiplyAdd(ai, b1, c4x1); }
                if (rows > 5) { ai = Vector512.Create(a[5]); c5x0 = Avx512F.FusedMultiplyAdd(ai, b0, c5x0); c5x1 = Avx512F.FusedMultiplyAdd(ai, b1, c5x1); }
                if (rows > 6) { ai = Vector512.Create(a[6]); c6x0 = Avx512F.FusedMultiplyAdd(ai, b0, c6x0); c6x1 = Avx512F.FusedMultiplyAdd(ai, b1, c6x1); }
                if (rows > 7) { ai = Vector512.Create(a[7]); c7x0 = Avx512F.FusedMultiplyAdd(ai, b0, c7x0); c7x1 = Avx512F.FusedMultiplyAdd(ai, b1, c7x1); }
                if (rows > 8) { ai = Vector512.Create(a[8]); c8x0 = Avx512F.FusedMultiplyAdd(ai, b0, c8x0); c8x1 = Avx512F.FusedMultiplyAdd(ai, b1, c8x1); }
                if (rows > 9) { ai = Vector512.Create(a[9]); c9x0 = Avx512F.FusedMultiplyAdd(ai, b0, c9x0); c9x1 = Avx512F.FusedMultiplyAdd(ai, b1, c9x1); }
                if (rows > 10) { ai = Vector512.Create(a[10]); c10x0 = Avx512F.FusedMultiplyAdd(ai, b0, c10x0); c10x1 = Avx512F.FusedMultiplyAdd(ai, b1, c10x1); }
                if (rows > 11) { ai = Vector512.Create(a[11]); c11x0 = Avx512F.FusedMultiplyAdd(ai, b0, c11x0); c11x1 = Avx512F.FusedMultiplyAdd(ai, b1, c11x1); }
                if (rows > 12) { ai = Vector512.Create(a[12]); c12x0 = Avx512F.FusedMultiplyAdd(ai, b0, c12x0); c12x1 = Avx512F.FusedMultiplyAdd(ai, b1, c12x1); }
                if (rows > 13) { ai = Vector512.Create(a[13]); c13x0 = Avx512F.FusedMultiplyAdd(ai, b0, c13x0); c13x1 = Avx512F.FusedMultiplyAdd(ai, b1, c13x1); }
            a += 14;
            b += 32;
        }

        Vector512<float> va = Vector512.Create(alpha);
        if (beta == 0f)
        {
                Store(c + 0 * ldc, c0x0 * va, c0x1 * va);
                if (height > 1) Store(c + 1 * ldc, c1x0 * va, c1x1 * va);
                if (height > 2) Store(c + 2 * ldc, c2x0 * va, c2x1 * va);
                if (height > 3) Store(c + 3 * ldc, c3x0 * va, c3x1 * va);
                if (height > 4) Store(c + 4 * ldc, c4x0 * va, c4x1 * va);
                if (height > 5) Store(c + 5 * ldc, c5x0 * va, c5x1 * va);
                if (height > 6) Store(c + 6 * ldc, c6x0 * va, c6x1 * va);
                if (height > 7) Store(c + 7 * ldc, c7x0 * va, c7x1 * va);
                if (height > 8) Store(c + 8 * ldc, c8x0 * va, c8x1 * va);
                if (height > 9) Store(c + 9 * ldc, c9x0 * va, c9x1 * va);
                if (height > 10) Store(c + 10 * ldc, c10x0 * va, c10x1 * va);
                if (height > 11) Store(c + 11 * ldc, c11x0 * va, c11x1 * va);
                if (height > 12) Store(c + 12 * ldc, c12x0 * va, c12x1 * va);
                if (height > 13) Store(c + 13 * ldc, c13x0 * va, c13x1 * va);
        }
        else
        {
            Vector512<float> vb = Vector512.Create(beta);
                Update(c + 0 * ldc, c0x0, c0x1, va, vb);
                if (height > 1) Update(c + 1 * ldc, c1x0, c1x1, va, vb);
                if (height > 2) Update(c + 2 * ldc, c2x0, c2x1, va, vb);
                if (height > 3) Update(c + 3 * ldc, c3x0, c3x1, va, vb);
                if (height > 4) Update(c + 4 * ldc, c4x0, c4x1, va, vb);
                if (height > 5) Update(c + 5 * ldc, c5x0, c5x1, va, vb);
                if (height > 6) Update(c + 6 * ldc, c6x0, c6x1, va, vb);
                if (height > 7) Update(c + 7 * ldc, c7x0, c7x1, va, vb);
                if (height > 8) Update(c + 8 * ldc, c8x0, c8x1, va, vb);
                if (height > 9) Update(c + 9 * ldc, c9x0, c9x1, va, vb);
                if (height > 10) Update(c + 10 * ldc, c10x0, c10x1, va, vb);
                if (height > 11) Update(c + 11 * ldc, c11x0, c11x1, va, vb);
                if (height > 12) Update(c + 12 * ldc, c12x0, c12x1, va, vb);
                if (height > 13) Update(c + 13 * ldc, c13x0, c13x1, va, vb);
        }
    }

    /// <summary>Prefetches the (up to three) cache lines of one 32-float row of C into L2.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(float* c)
    {
        Sse.Prefetch1(c);
        Sse.Prefetch1(c + 16);
        Sse.Prefetch1(c + 31);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> x0, Vector512<float> x1)
    {
        Avx512F.Store(c, x0);
        Avx512F.Store(c + 16, x1);
    }

    /// <summary>c = alpha·x + beta·c for one 32-float row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update(float* c, Vector512<float> x0, Vector512<float> x1, Vector512<float> alpha, Vector512<float> beta)
    {
        Avx512F.Store(c, Avx512F.FusedMultiplyAdd(x0, alpha, Avx512F.LoadVector512(c) * beta));
        Avx512F.Store(c + 16, Avx512F.FusedMultiplyAdd(x1, alpha, Avx512F.LoadVector512(c + 16) * beta));
    }
}
