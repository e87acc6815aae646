using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Single-precision general matrix multiply on row-major operands:
/// <c>C[m×n] = alpha · op(A)[m×k] · op(B)[k×n] + beta · C</c>, where <c>op(X)</c> is X or Xᵀ.
/// </summary>
/// <remarks>
/// PLACEHOLDER implementation (correct, not fast): the cache-blocked, panel-packed AVX-512 kernel replaces the body
/// of <see cref="Sgemm"/> without changing this signature.
/// Leading dimensions are row strides in elements: A is stored as rows of length ≥ lda
/// (m×k when not transposed, k×m when transposed), likewise B and C.
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
}
