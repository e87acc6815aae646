using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Single-precision general matrix multiply on row-major operands:
/// <c>C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C</c>, where <c>op(X)</c> is X or Xᵀ.
/// </summary>
/// <remarks>
/// PLACEHOLDER implementation (correct, not fast): the cache-blocked, panel-packed AVX-512 kernel replaces the bodies
/// without changing these signatures.
/// Leading dimensions are row strides in elements: A is stored as rows of length ≥ lda
/// (m×k when not transposed, k×m when transposed), likewise B and C.
/// The BF16 (raw bits, <c>ushort</c>) and F16 overloads take a frozen weight in storage precision and widen it to
/// fp32 on the fly; the product is always computed and accumulated in fp32.
/// </remarks>
public static class Gemm
{
    public static void Sgemm(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<float> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        Span<float> column = k <= 4096 ? stackalloc float[k] : new float[k];
        Span<float> row = k <= 4096 ? stackalloc float[k] : new float[k];
        for (int i = 0; i < m; i++)
        {
            for (int p = 0; p < k; p++) row[p] = transA ? a[p * lda + i] : a[i * lda + p];
            for (int j = 0; j < n; j++)
            {
                for (int p = 0; p < k; p++) column[p] = transB ? b[j * ldb + p] : b[p * ldb + j];
                float dot = TensorPrimitives.Dot<float>(row, column);
                ref float target = ref c[i * ldc + j];
                target = beta == 0f ? alpha * dot : alpha * dot + beta * target;
            }
        }
    }

    /// <summary>As <see cref="Sgemm"/>, with B stored as bfloat16 bits.</summary>
    public static void SgemmBf16(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<ushort> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        int rows = transB ? n : k;
        var widened = new float[rows * ldb];
        for (int i = 0; i < widened.Length && i < b.Length; i++) widened[i] = BitConverter.Int32BitsToSingle(b[i] << 16);
        Sgemm(transA, transB, m, n, k, alpha, a, lda, widened, ldb, beta, c, ldc);
    }

    /// <summary>As <see cref="Sgemm"/>, with B stored as IEEE half precision.</summary>
    public static void SgemmF16(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda,
        ReadOnlySpan<Half> b, int ldb,
        float beta, Span<float> c, int ldc)
    {
        var widened = new float[b.Length];
        TensorPrimitives.ConvertToSingle(b, widened);
        Sgemm(transA, transB, m, n, k, alpha, a, lda, widened, ldb, beta, c, ldc);
    }

    /// <summary>
    /// <paramref name="batchCount"/> independent products; operand i starts at i·stride in each span.
    /// </summary>
    public static void SgemmBatched(
        bool transA, bool transB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int lda, long strideA,
        ReadOnlySpan<float> b, int ldb, long strideB,
        float beta, Span<float> c, int ldc, long strideC, int batchCount)
    {
        for (int i = 0; i < batchCount; i++)
        {
            Sgemm(transA, transB, m, n, k, alpha,
                a[(int)(i * strideA)..], lda, b[(int)(i * strideB)..], ldb,
                beta, c[(int)(i * strideC)..], ldc);
        }
    }
}
