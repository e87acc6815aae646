using System.Runtime.CompilerServices;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Portable fallback micro-kernel: a 4×4 tile of C in 16 scalar locals, for processors without AVX2/FMA.
/// </summary>
/// <remarks>
/// Sixteen independent accumulators are what general-purpose register files hold without spilling, and give the
/// out-of-order core independent multiply-add chains. Multiply and add are separate (not fused) so the fallback never
/// calls a software FMA on hardware without one.
/// </remarks>
internal readonly unsafe struct MicroKernelScalar : IMicroKernel
{
    public static int MR => 4;

    public static int NR => 4;

    public static int KC => 256;

    public static int MC => 4 * 32;

    public static int NC => 4 * 512;

    public static GemmIsa Isa => GemmIsa.Scalar;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        float c00 = 0, c01 = 0, c02 = 0, c03 = 0;
        float c10 = 0, c11 = 0, c12 = 0, c13 = 0;
        float c20 = 0, c21 = 0, c22 = 0, c23 = 0;
        float c30 = 0, c31 = 0, c32 = 0, c33 = 0;
        for (int p = 0; p < kc; p++)
        {
            float b0 = b[0], b1 = b[1], b2 = b[2], b3 = b[3];
            float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
            c00 += a0 * b0; c01 += a0 * b1; c02 += a0 * b2; c03 += a0 * b3;
            c10 += a1 * b0; c11 += a1 * b1; c12 += a1 * b2; c13 += a1 * b3;
            c20 += a2 * b0; c21 += a2 * b1; c22 += a2 * b2; c23 += a2 * b3;
            c30 += a3 * b0; c31 += a3 * b1; c32 += a3 * b2; c33 += a3 * b3;
            a += 4;
            b += 4;
        }

        Row(c, c00, c01, c02, c03, alpha, beta);
        Row(c + ldc, c10, c11, c12, c13, alpha, beta);
        Row(c + 2 * ldc, c20, c21, c22, c23, alpha, beta);
        Row(c + 3 * ldc, c30, c31, c32, c33, alpha, beta);
    }

    /// <summary>Edge tiles: the full 4×4 tile into a stack buffer, then only the first <paramref name="height"/> rows to C.</summary>
    [SkipLocalsInit]
    public static void RunRows(int height, int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta)
    {
        float* tile = stackalloc float[16];
        Run(kc, a, b, tile, 4, 1f, 0f);
        for (int i = 0; i < height; i++)
            Row(c + i * ldc, tile[4 * i], tile[4 * i + 1], tile[4 * i + 2], tile[4 * i + 3], alpha, beta);
    }

    /// <summary>c[0..4) = alpha·x + beta·c, not reading c when beta is 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Row(float* c, float x0, float x1, float x2, float x3, float alpha, float beta)
    {
        if (beta == 0f)
        {
            c[0] = alpha * x0; c[1] = alpha * x1; c[2] = alpha * x2; c[3] = alpha * x3;
        }
        else
        {
            c[0] = alpha * x0 + beta * c[0]; c[1] = alpha * x1 + beta * c[1];
            c[2] = alpha * x2 + beta * c[2]; c[3] = alpha * x3 + beta * c[3];
        }
    }
}
