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
/// 6 A values for 12 FMAs.
/// </remarks>
internal readonly unsafe struct MicroKernelAvx2 : IMicroKernel
{
    public static int MR => 6;

    public static int NR => 16;

    public static int KC => 256;

    public static int MC => 6 * 40;

    public static int NC => 16 * 256;

    public static GemmIsa Isa => GemmIsa.Avx2;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        // Touch the C tile early so its lines arrive while the k loop runs.
        Sse.Prefetch0(c + 0 * ldc); Sse.Prefetch0(c + 0 * ldc + 15);
        Sse.Prefetch0(c + 1 * ldc); Sse.Prefetch0(c + 1 * ldc + 15);
        Sse.Prefetch0(c + 2 * ldc); Sse.Prefetch0(c + 2 * ldc + 15);
        Sse.Prefetch0(c + 3 * ldc); Sse.Prefetch0(c + 3 * ldc + 15);
        Sse.Prefetch0(c + 4 * ldc); Sse.Prefetch0(c + 4 * ldc + 15);
        Sse.Prefetch0(c + 5 * ldc); Sse.Prefetch0(c + 5 * ldc + 15);

        Vector256<float>
            c0x0 = Vector256<float>.Zero, c0x1 = Vector256<float>.Zero,
            c1x0 = Vector256<float>.Zero, c1x1 = Vector256<float>.Zero,
            c2x0 = Vector256<float>.Zero, c2x1 = Vector256<float>.Zero,
            c3x0 = Vector256<float>.Zero, c3x1 = Vector256<float>.Zero,
            c4x0 = Vector256<float>.Zero, c4x1 = Vector256<float>.Zero,
            c5x0 = Vector256<float>.Zero, c5x1 = Vector256<float>.Zero;
        for (int p = 0; p < kc; p++)
        {
            Vector256<float> b0 = Avx.LoadAlignedVector256(b);
            Vector256<float> b1 = Avx.LoadAlignedVector256(b + 8);
            Vector256<float> ai;
            ai = Vector256.Create(a[0]); c0x0 = Fma.MultiplyAdd(ai, b0, c0x0); c0x1 = Fma.MultiplyAdd(ai, b1, c0x1);
            ai = Vector256.Create(a[1]); c1x0 = Fma.MultiplyAdd(ai, b0, c1x0); c1x1 = Fma.MultiplyAdd(ai, b1, c1x1);
            ai = Vector256.Create(a[2]); c2x0 = Fma.MultiplyAdd(ai, b0, c2x0); c2x1 = Fma.MultiplyAdd(ai, b1, c2x1);
            ai = Vector256.Create(a[3]); c3x0 = Fma.MultiplyAdd(ai, b0, c3x0); c3x1 = Fma.MultiplyAdd(ai, b1, c3x1);
            ai = Vector256.Create(a[4]); c4x0 = Fma.MultiplyAdd(ai, b0, c4x0); c4x1 = Fma.MultiplyAdd(ai, b1, c4x1);
            ai = Vector256.Create(a[5]); c5x0 = Fma.MultiplyAdd(ai, b0, c5x0); c5x1 = Fma.MultiplyAdd(ai, b1, c5x1);
            a += 6;
            b += 16;
        }

        Vector256<float> va = Vector256.Create(alpha);
        if (beta == 0f)
        {
            Store(c + 0 * ldc, c0x0 * va, c0x1 * va);
            Store(c + 1 * ldc, c1x0 * va, c1x1 * va);
            Store(c + 2 * ldc, c2x0 * va, c2x1 * va);
            Store(c + 3 * ldc, c3x0 * va, c3x1 * va);
            Store(c + 4 * ldc, c4x0 * va, c4x1 * va);
            Store(c + 5 * ldc, c5x0 * va, c5x1 * va);
        }
        else
        {
            Vector256<float> vb = Vector256.Create(beta);
            Update(c + 0 * ldc, c0x0, c0x1, va, vb);
            Update(c + 1 * ldc, c1x0, c1x1, va, vb);
            Update(c + 2 * ldc, c2x0, c2x1, va, vb);
            Update(c + 3 * ldc, c3x0, c3x1, va, vb);
            Update(c + 4 * ldc, c4x0, c4x1, va, vb);
            Update(c + 5 * ldc, c5x0, c5x1, va, vb);
        }
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
