using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// AVX2+FMA3 micro-kernel: a 6×16 tile of C held in 12 ymm accumulators (2 vectors of 8 floats per row).
/// </summary>
/// <remarks>
/// Why this shape (the classic Haswell tile): AVX2 has 16 vector registers; 12 accumulators + 2 B vectors + 1 broadcast
/// fit, and 12 independent FMA chains cover the FMA latency of two pipes. Each k step loads 2 B vectors and broadcasts
/// 6 A values for 12 FMAs. Edge tiles run the same code for 2 or 4 rows.
/// </remarks>
internal readonly unsafe struct MicroKernelAvx2 : IMicroKernel
{
    public static int MR => 6;

    public static int NR => 16;

    public static int KC => 256;

    public static int MC => 6 * 40;

    public static int NC => 16 * 256;

    public static GemmIsa Isa => GemmIsa.Avx2;

    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta) =>
        Tile<Rows6>(MR, kc, a, b, c, ldc, alpha, beta);

    public static void RunRows(int height, int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        switch (height)
        {
            case <= 2: Tile<Rows2>(height, kc, a, b, c, ldc, alpha, beta); break;
            case <= 4: Tile<Rows4>(height, kc, a, b, c, ldc, alpha, beta); break;
            default: Tile<Rows6>(height, kc, a, b, c, ldc, alpha, beta); break;
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

        // Touch the C tile early so its lines arrive while the k loop runs.
        Prefetch(c + 0 * ldc);
        if (height > 1) Prefetch(c + 1 * ldc);
        if (height > 2) Prefetch(c + 2 * ldc);
        if (height > 3) Prefetch(c + 3 * ldc);
        if (height > 4) Prefetch(c + 4 * ldc);
        if (height > 5) Prefetch(c + 5 * ldc);

        Vector256<float>
            c0x0 = default, c0x1 = default,
            c1x0 = default, c1x1 = default,
            c2x0 = default, c2x1 = default,
            c3x0 = default, c3x1 = default,
            c4x0 = default, c4x1 = default,
            c5x0 = default, c5x1 = default;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Avx.LoadAlignedVector256(b);
            Vector256<float> b1 = Avx.LoadAlignedVector256(b + 8);
            Vector256<float> ai;
            ai = Vector256.Create(a[0]); c0x0 = Fma.MultiplyAdd(ai, b0, c0x0); c0x1 = Fma.MultiplyAdd(ai, b1, c0x1);
            if (rows > 1) { ai = Vector256.Create(a[1]); c1x0 = Fma.MultiplyAdd(ai, b0, c1x0); c1x1 = Fma.MultiplyAdd(ai, b1, c1x1); }
            if (rows > 2) { ai = Vector256.Create(a[2]); c2x0 = Fma.MultiplyAdd(ai, b0, c2x0); c2x1 = Fma.MultiplyAdd(ai, b1, c2x1); }
            if (rows > 3) { ai = Vector256.Create(a[3]); c3x0 = Fma.MultiplyAdd(ai, b0, c3x0); c3x1 = Fma.MultiplyAdd(ai, b1, c3x1); }
            if (rows > 4) { ai = Vector256.Create(a[4]); c4x0 = Fma.MultiplyAdd(ai, b0, c4x0); c4x1 = Fma.MultiplyAdd(ai, b1, c4x1); }
            if (rows > 5) { ai = Vector256.Create(a[5]); c5x0 = Fma.MultiplyAdd(ai, b0, c5x0); c5x1 = Fma.MultiplyAdd(ai, b1, c5x1); }
            a += 6;
            b += 16;
        }

        Vector256<float> va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Store(c + 0 * ldc, c0x0 * va, c0x1 * va);
            if (height > 1) Store(c + 1 * ldc, c1x0 * va, c1x1 * va);
            if (height > 2) Store(c + 2 * ldc, c2x0 * va, c2x1 * va);
            if (height > 3) Store(c + 3 * ldc, c3x0 * va, c3x1 * va);
            if (height > 4) Store(c + 4 * ldc, c4x0 * va, c4x1 * va);
            if (height > 5) Store(c + 5 * ldc, c5x0 * va, c5x1 * va);
        }
        else
        {
            Vector256<float> vb = Vector256.Create(beta);
            Update(c + 0 * ldc, c0x0, c0x1, va, vb);
            if (height > 1) Update(c + 1 * ldc, c1x0, c1x1, va, vb);
            if (height > 2) Update(c + 2 * ldc, c2x0, c2x1, va, vb);
            if (height > 3) Update(c + 3 * ldc, c3x0, c3x1, va, vb);
            if (height > 4) Update(c + 4 * ldc, c4x0, c4x1, va, vb);
            if (height > 5) Update(c + 5 * ldc, c5x0, c5x1, va, vb);
        }
    }

    /// <summary>Prefetches the (up to two) cache lines of one 16-float row of C.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Prefetch(float* c)
    {
        Sse.Prefetch0(c);
        Sse.Prefetch0(c + 15);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> x0, Vector256<float> x1)
    {
        Avx.Store(c, x0);
        Avx.Store(c + 8, x1);
    }

    /// <summary>c = alpha·x + beta·c for one 16-float row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Update(float* c, Vector256<float> x0, Vector256<float> x1, Vector256<float> alpha, Vector256<float> beta)
    {
        Avx.Store(c, Fma.MultiplyAdd(x0, alpha, Avx.LoadVector256(c) * beta));
        Avx.Store(c + 8, Fma.MultiplyAdd(x1, alpha, Avx.LoadVector256(c + 8) * beta));
    }
}
