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
/// </remarks>
internal readonly unsafe struct MicroKernelAvx512 : IMicroKernel
{
    public static int MR => 14;

    public static int NR => 32;

    public static int KC => 256;

    public static int MC => 14 * 24;

    public static int NC => 32 * 128;

    public static GemmIsa Isa => GemmIsa.Avx512;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        // Touch the C tile early so its lines arrive while the k loop runs.
        Sse.Prefetch0(c + 0 * ldc); Sse.Prefetch0(c + 0 * ldc + 31);
        Sse.Prefetch0(c + 1 * ldc); Sse.Prefetch0(c + 1 * ldc + 31);
        Sse.Prefetch0(c + 2 * ldc); Sse.Prefetch0(c + 2 * ldc + 31);
        Sse.Prefetch0(c + 3 * ldc); Sse.Prefetch0(c + 3 * ldc + 31);
        Sse.Prefetch0(c + 4 * ldc); Sse.Prefetch0(c + 4 * ldc + 31);
        Sse.Prefetch0(c + 5 * ldc); Sse.Prefetch0(c + 5 * ldc + 31);
        Sse.Prefetch0(c + 6 * ldc); Sse.Prefetch0(c + 6 * ldc + 31);
        Sse.Prefetch0(c + 7 * ldc); Sse.Prefetch0(c + 7 * ldc + 31);
        Sse.Prefetch0(c + 8 * ldc); Sse.Prefetch0(c + 8 * ldc + 31);
        Sse.Prefetch0(c + 9 * ldc); Sse.Prefetch0(c + 9 * ldc + 31);
        Sse.Prefetch0(c + 10 * ldc); Sse.Prefetch0(c + 10 * ldc + 31);
        Sse.Prefetch0(c + 11 * ldc); Sse.Prefetch0(c + 11 * ldc + 31);
        Sse.Prefetch0(c + 12 * ldc); Sse.Prefetch0(c + 12 * ldc + 31);
        Sse.Prefetch0(c + 13 * ldc); Sse.Prefetch0(c + 13 * ldc + 31);

        Vector512<float>
            c0x0 = Vector512<float>.Zero, c0x1 = Vector512<float>.Zero,
            c1x0 = Vector512<float>.Zero, c1x1 = Vector512<float>.Zero,
            c2x0 = Vector512<float>.Zero, c2x1 = Vector512<float>.Zero,
            c3x0 = Vector512<float>.Zero, c3x1 = Vector512<float>.Zero,
            c4x0 = Vector512<float>.Zero, c4x1 = Vector512<float>.Zero,
            c5x0 = Vector512<float>.Zero, c5x1 = Vector512<float>.Zero,
            c6x0 = Vector512<float>.Zero, c6x1 = Vector512<float>.Zero,
            c7x0 = Vector512<float>.Zero, c7x1 = Vector512<float>.Zero,
            c8x0 = Vector512<float>.Zero, c8x1 = Vector512<float>.Zero,
            c9x0 = Vector512<float>.Zero, c9x1 = Vector512<float>.Zero,
            c10x0 = Vector512<float>.Zero, c10x1 = Vector512<float>.Zero,
            c11x0 = Vector512<float>.Zero, c11x1 = Vector512<float>.Zero,
            c12x0 = Vector512<float>.Zero, c12x1 = Vector512<float>.Zero,
            c13x0 = Vector512<float>.Zero, c13x1 = Vector512<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            Vector512<float> b0 = Avx512F.LoadAlignedVector512(b);
            Vector512<float> b1 = Avx512F.LoadAlignedVector512(b + 16);
            Vector512<float> ai;
            ai = Vector512.Create(a[0]); c0x0 = Avx512F.FusedMultiplyAdd(ai, b0, c0x0); c0x1 = Avx512F.FusedMultiplyAdd(ai, b1, c0x1);
            ai = Vector512.Create(a[1]); c1x0 = Avx512F.FusedMultiplyAdd(ai, b0, c1x0); c1x1 = Avx512F.FusedMultiplyAdd(ai, b1, c1x1);
            ai = Vector512.Create(a[2]); c2x0 = Avx512F.FusedMultiplyAdd(ai, b0, c2x0); c2x1 = Avx512F.FusedMultiplyAdd(ai, b1, c2x1);
            ai = Vector512.Create(a[3]); c3x0 = Avx512F.FusedMultiplyAdd(ai, b0, c3x0); c3x1 = Avx512F.FusedMultiplyAdd(ai, b1, c3x1);
            ai = Vector512.Create(a[4]); c4x0 = Avx512F.FusedMultiplyAdd(ai, b0, c4x0); c4x1 = Avx512F.FusedMultiplyAdd(ai, b1, c4x1);
            ai = Vector512.Create(a[5]); c5x0 = Avx512F.FusedMultiplyAdd(ai, b0, c5x0); c5x1 = Avx512F.FusedMultiplyAdd(ai, b1, c5x1);
            ai = Vector512.Create(a[6]); c6x0 = Avx512F.FusedMultiplyAdd(ai, b0, c6x0); c6x1 = Avx512F.FusedMultiplyAdd(ai, b1, c6x1);
            ai = Vector512.Create(a[7]); c7x0 = Avx512F.FusedMultiplyAdd(ai, b0, c7x0); c7x1 = Avx512F.FusedMultiplyAdd(ai, b1, c7x1);
            ai = Vector512.Create(a[8]); c8x0 = Avx512F.FusedMultiplyAdd(ai, b0, c8x0); c8x1 = Avx512F.FusedMultiplyAdd(ai, b1, c8x1);
            ai = Vector512.Create(a[9]); c9x0 = Avx512F.FusedMultiplyAdd(ai, b0, c9x0); c9x1 = Avx512F.FusedMultiplyAdd(ai, b1, c9x1);
            ai = Vector512.Create(a[10]); c10x0 = Avx512F.FusedMultiplyAdd(ai, b0, c10x0); c10x1 = Avx512F.FusedMultiplyAdd(ai, b1, c10x1);
            ai = Vector512.Create(a[11]); c11x0 = Avx512F.FusedMultiplyAdd(ai, b0, c11x0); c11x1 = Avx512F.FusedMultiplyAdd(ai, b1, c11x1);
            ai = Vector512.Create(a[12]); c12x0 = Avx512F.FusedMultiplyAdd(ai, b0, c12x0); c12x1 = Avx512F.FusedMultiplyAdd(ai, b1, c12x1);
            ai = Vector512.Create(a[13]); c13x0 = Avx512F.FusedMultiplyAdd(ai, b0, c13x0); c13x1 = Avx512F.FusedMultiplyAdd(ai, b1, c13x1);
            a += 14;
            b += 32;
        }

        Vector512<float> va = Vector512.Create(alpha);
        if (beta == 0f)
        {
            Store(c + 0 * ldc, c0x0 * va, c0x1 * va);
            Store(c + 1 * ldc, c1x0 * va, c1x1 * va);
            Store(c + 2 * ldc, c2x0 * va, c2x1 * va);
            Store(c + 3 * ldc, c3x0 * va, c3x1 * va);
            Store(c + 4 * ldc, c4x0 * va, c4x1 * va);
            Store(c + 5 * ldc, c5x0 * va, c5x1 * va);
            Store(c + 6 * ldc, c6x0 * va, c6x1 * va);
            Store(c + 7 * ldc, c7x0 * va, c7x1 * va);
            Store(c + 8 * ldc, c8x0 * va, c8x1 * va);
            Store(c + 9 * ldc, c9x0 * va, c9x1 * va);
            Store(c + 10 * ldc, c10x0 * va, c10x1 * va);
            Store(c + 11 * ldc, c11x0 * va, c11x1 * va);
            Store(c + 12 * ldc, c12x0 * va, c12x1 * va);
            Store(c + 13 * ldc, c13x0 * va, c13x1 * va);
        }
        else
        {
            Vector512<float> vb = Vector512.Create(beta);
            Update(c + 0 * ldc, c0x0, c0x1, va, vb);
            Update(c + 1 * ldc, c1x0, c1x1, va, vb);
            Update(c + 2 * ldc, c2x0, c2x1, va, vb);
            Update(c + 3 * ldc, c3x0, c3x1, va, vb);
            Update(c + 4 * ldc, c4x0, c4x1, va, vb);
            Update(c + 5 * ldc, c5x0, c5x1, va, vb);
            Update(c + 6 * ldc, c6x0, c6x1, va, vb);
            Update(c + 7 * ldc, c7x0, c7x1, va, vb);
            Update(c + 8 * ldc, c8x0, c8x1, va, vb);
            Update(c + 9 * ldc, c9x0, c9x1, va, vb);
            Update(c + 10 * ldc, c10x0, c10x1, va, vb);
            Update(c + 11 * ldc, c11x0, c11x1, va, vb);
            Update(c + 12 * ldc, c12x0, c12x1, va, vb);
            Update(c + 13 * ldc, c13x0, c13x1, va, vb);
        }
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
