using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// AVX-512 kernels for products with 1–4 rows of A, reading B where it lies (no packing). With so few rows every
/// element of B is used at most four times, so packing B would cost about as much as the product; these kernels stream
/// B once, from its own layout.
/// </summary>
internal static unsafe class SkinnyKernelsAvx512
{
    /// <summary>
    /// B stored k×n: each output row is a combination of B's rows. A strip of 64 columns (4 zmm per row, up to 16
    /// accumulators) is accumulated over all k: per k step, 4 B loads feed 4·rows FMAs.
    /// Element (r, p) of op(A) is at <c>a[r·aRow + p·aStep]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowsTimesB<TRows>(float* a, nint aRow, nint aStep, int k, float* b, nint ldb,
        float* c, nint ldc, int jBegin, int jEnd, float alpha, float beta)
        where TRows : struct, IRowCount
    {
        int rows = TRows.Value, j = jBegin;
        for (; j + 64 <= jEnd; j += 64)
        {
            Vector512<float> r0c0 = default, r0c1 = default, r0c2 = default, r0c3 = default;
            Vector512<float> r1c0 = default, r1c1 = default, r1c2 = default, r1c3 = default;
            Vector512<float> r2c0 = default, r2c1 = default, r2c2 = default, r2c3 = default;
            Vector512<float> r3c0 = default, r3c1 = default, r3c2 = default, r3c3 = default;
            float* bp = b + j, ap = a;
            for (int p = 0; p < k; p++, bp += ldb, ap += aStep)
            {
                Vector512<float> b0 = Avx512F.LoadVector512(bp), b1 = Avx512F.LoadVector512(bp + 16);
                Vector512<float> b2 = Avx512F.LoadVector512(bp + 32), b3 = Avx512F.LoadVector512(bp + 48);
                Vector512<float> x = Vector512.Create(ap[0]);
                r0c0 = Avx512F.FusedMultiplyAdd(x, b0, r0c0); r0c1 = Avx512F.FusedMultiplyAdd(x, b1, r0c1);
                r0c2 = Avx512F.FusedMultiplyAdd(x, b2, r0c2); r0c3 = Avx512F.FusedMultiplyAdd(x, b3, r0c3);
                if (rows > 1)
                {
                    x = Vector512.Create(ap[aRow]);
                    r1c0 = Avx512F.FusedMultiplyAdd(x, b0, r1c0); r1c1 = Avx512F.FusedMultiplyAdd(x, b1, r1c1);
                    r1c2 = Avx512F.FusedMultiplyAdd(x, b2, r1c2); r1c3 = Avx512F.FusedMultiplyAdd(x, b3, r1c3);
                }
                if (rows > 2)
                {
                    x = Vector512.Create(ap[2 * aRow]);
                    r2c0 = Avx512F.FusedMultiplyAdd(x, b0, r2c0); r2c1 = Avx512F.FusedMultiplyAdd(x, b1, r2c1);
                    r2c2 = Avx512F.FusedMultiplyAdd(x, b2, r2c2); r2c3 = Avx512F.FusedMultiplyAdd(x, b3, r2c3);
                }
                if (rows > 3)
                {
                    x = Vector512.Create(ap[3 * aRow]);
                    r3c0 = Avx512F.FusedMultiplyAdd(x, b0, r3c0); r3c1 = Avx512F.FusedMultiplyAdd(x, b1, r3c1);
                    r3c2 = Avx512F.FusedMultiplyAdd(x, b2, r3c2); r3c3 = Avx512F.FusedMultiplyAdd(x, b3, r3c3);
                }
            }

            Store4(c + j, r0c0, r0c1, r0c2, r0c3, alpha, beta);
            if (rows > 1) Store4(c + ldc + j, r1c0, r1c1, r1c2, r1c3, alpha, beta);
            if (rows > 2) Store4(c + 2 * ldc + j, r2c0, r2c1, r2c2, r2c3, alpha, beta);
            if (rows > 3) Store4(c + 3 * ldc + j, r3c0, r3c1, r3c2, r3c3, alpha, beta);
        }

        for (; j + 16 <= jEnd; j += 16)
        {
            Vector512<float> r0 = default, r1 = default, r2 = default, r3 = default;
            float* bp = b + j, ap = a;
            for (int p = 0; p < k; p++, bp += ldb, ap += aStep)
            {
                Vector512<float> b0 = Avx512F.LoadVector512(bp);
                r0 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[0]), b0, r0);
                if (rows > 1) r1 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[aRow]), b0, r1);
                if (rows > 2) r2 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[2 * aRow]), b0, r2);
                if (rows > 3) r3 = Avx512F.FusedMultiplyAdd(Vector512.Create(ap[3 * aRow]), b0, r3);
            }

            Store1(c + j, r0, alpha, beta);
            if (rows > 1) Store1(c + ldc + j, r1, alpha, beta);
            if (rows > 2) Store1(c + 2 * ldc + j, r2, alpha, beta);
            if (rows > 3) Store1(c + 3 * ldc + j, r3, alpha, beta);
        }

        // Fewer than 16 columns left: one scalar dot product per element.
        for (; j < jEnd; j++)
        {
            for (int r = 0; r < rows; r++)
            {
                float sum = 0f;
                float* ap = a + r * aRow;
                for (int p = 0; p < k; p++) sum += ap[p * aStep] * b[p * ldb + j];
                StoreScalar(c + r * ldc + j, sum, alpha, beta);
            }
        }
    }

    /// <summary>
    /// B stored n×k (transposed): each output element is a dot product of a row of A with a row of B. Four B rows at
    /// a time against every A row (up to 16 accumulators of 16 partial sums), reduced horizontally at the end.
    /// A's rows must be contiguous: element (r, p) at <c>a[r·lda + p]</c>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void RowsTimesBTransposed<TRows>(float* a, nint lda, int k, float* b, nint ldb,
        float* c, nint ldc, int jBegin, int jEnd, float alpha, float beta)
        where TRows : struct, IRowCount
    {
        int rows = TRows.Value, j = jBegin;
        int kVector = k & ~15;
        for (; j + 4 <= jEnd; j += 4)
        {
            Vector512<float> r0c0 = default, r0c1 = default, r0c2 = default, r0c3 = default;
            Vector512<float> r1c0 = default, r1c1 = default, r1c2 = default, r1c3 = default;
            Vector512<float> r2c0 = default, r2c1 = default, r2c2 = default, r2c3 = default;
            Vector512<float> r3c0 = default, r3c1 = default, r3c2 = default, r3c3 = default;
            float* b0p = b + j * ldb, b1p = b0p + ldb, b2p = b1p + ldb, b3p = b2p + ldb;
            for (int p = 0; p < kVector; p += 16)
            {
                Vector512<float> b0 = Avx512F.LoadVector512(b0p + p), b1 = Avx512F.LoadVector512(b1p + p);
                Vector512<float> b2 = Avx512F.LoadVector512(b2p + p), b3 = Avx512F.LoadVector512(b3p + p);
                Vector512<float> x = Avx512F.LoadVector512(a + p);
                r0c0 = Avx512F.FusedMultiplyAdd(x, b0, r0c0); r0c1 = Avx512F.FusedMultiplyAdd(x, b1, r0c1);
                r0c2 = Avx512F.FusedMultiplyAdd(x, b2, r0c2); r0c3 = Avx512F.FusedMultiplyAdd(x, b3, r0c3);
                if (rows > 1)
                {
                    x = Avx512F.LoadVector512(a + lda + p);
                    r1c0 = Avx512F.FusedMultiplyAdd(x, b0, r1c0); r1c1 = Avx512F.FusedMultiplyAdd(x, b1, r1c1);
                    r1c2 = Avx512F.FusedMultiplyAdd(x, b2, r1c2); r1c3 = Avx512F.FusedMultiplyAdd(x, b3, r1c3);
                }
                if (rows > 2)
                {
                    x = Avx512F.LoadVector512(a + 2 * lda + p);
                    r2c0 = Avx512F.FusedMultiplyAdd(x, b0, r2c0); r2c1 = Avx512F.FusedMultiplyAdd(x, b1, r2c1);
                    r2c2 = Avx512F.FusedMultiplyAdd(x, b2, r2c2); r2c3 = Avx512F.FusedMultiplyAdd(x, b3, r2c3);
                }
                if (rows > 3)
                {
                    x = Avx512F.LoadVector512(a + 3 * lda + p);
                    r3c0 = Avx512F.FusedMultiplyAdd(x, b0, r3c0); r3c1 = Avx512F.FusedMultiplyAdd(x, b1, r3c1);
                    r3c2 = Avx512F.FusedMultiplyAdd(x, b2, r3c2); r3c3 = Avx512F.FusedMultiplyAdd(x, b3, r3c3);
                }
            }

            FinishDots(a, k, kVector, b0p, b1p, b2p, b3p, c + j, alpha, beta, r0c0, r0c1, r0c2, r0c3);
            if (rows > 1) FinishDots(a + lda, k, kVector, b0p, b1p, b2p, b3p, c + ldc + j, alpha, beta, r1c0, r1c1, r1c2, r1c3);
            if (rows > 2) FinishDots(a + 2 * lda, k, kVector, b0p, b1p, b2p, b3p, c + 2 * ldc + j, alpha, beta, r2c0, r2c1, r2c2, r2c3);
            if (rows > 3) FinishDots(a + 3 * lda, k, kVector, b0p, b1p, b2p, b3p, c + 3 * ldc + j, alpha, beta, r3c0, r3c1, r3c2, r3c3);
        }

        // Fewer than four B rows left: one vector dot product per element.
        for (; j < jEnd; j++)
        {
            float* bj = b + j * ldb;
            for (int r = 0; r < rows; r++)
            {
                float* ar = a + r * lda;
                Vector512<float> acc = default;
                for (int p = 0; p < kVector; p += 16)
                    acc = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(ar + p), Avx512F.LoadVector512(bj + p), acc);
                StoreScalar(c + r * ldc + j, Vector512.Sum(acc) + TailDot(ar, bj, kVector, k), alpha, beta);
            }
        }
    }

    /// <summary>Reduces four dot-product accumulators of one A row, adds the k tail, and stores c[0..4).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void FinishDots(float* ar, int k, int kVector, float* b0, float* b1, float* b2, float* b3,
        float* c, float alpha, float beta, Vector512<float> s0, Vector512<float> s1, Vector512<float> s2, Vector512<float> s3)
    {
        StoreScalar(c, Vector512.Sum(s0) + TailDot(ar, b0, kVector, k), alpha, beta);
        StoreScalar(c + 1, Vector512.Sum(s1) + TailDot(ar, b1, kVector, k), alpha, beta);
        StoreScalar(c + 2, Vector512.Sum(s2) + TailDot(ar, b2, kVector, k), alpha, beta);
        StoreScalar(c + 3, Vector512.Sum(s3) + TailDot(ar, b3, kVector, k), alpha, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float TailDot(float* x, float* y, int begin, int end)
    {
        float sum = 0f;
        for (int p = begin; p < end; p++) sum += x[p] * y[p];
        return sum;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store4(float* c, Vector512<float> x0, Vector512<float> x1, Vector512<float> x2, Vector512<float> x3,
        float alpha, float beta)
    {
        Store1(c, x0, alpha, beta);
        Store1(c + 16, x1, alpha, beta);
        Store1(c + 32, x2, alpha, beta);
        Store1(c + 48, x3, alpha, beta);
    }

    /// <summary>c[0..16) = alpha·x + beta·c, not reading c when beta is 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store1(float* c, Vector512<float> x, float alpha, float beta)
    {
        Vector512<float> scaled = x * Vector512.Create(alpha);
        if (beta != 0f) scaled = Avx512F.FusedMultiplyAdd(Avx512F.LoadVector512(c), Vector512.Create(beta), scaled);
        Avx512F.Store(c, scaled);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreScalar(float* c, float sum, float alpha, float beta) =>
        *c = beta == 0f ? alpha * sum : alpha * sum + beta * *c;
}
