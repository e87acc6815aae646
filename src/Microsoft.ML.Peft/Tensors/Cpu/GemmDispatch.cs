using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// One GEMM operand: a matrix view expressed as (transposed?, leading dimension) over a tensor's memory, so that
/// transposed views are passed to <see cref="Gemm"/> as flags instead of being copied.
/// </summary>
internal readonly unsafe struct GemmOperand
{
    public GemmOperand(Tensor tensor, int offset, int rows, int cols, bool trans, int ld)
    {
        Tensor = tensor;
        Offset = offset;
        Rows = rows;
        Cols = cols;
        Trans = trans;
        Ld = ld;
    }

    /// <summary>The tensor whose storage holds the matrix (its own view offset is already included in <see cref="Offset"/>).</summary>
    public Tensor Tensor { get; }

    /// <summary>Element offset of the matrix's first element relative to the storage base.</summary>
    public int Offset { get; }

    public int Rows { get; }

    public int Cols { get; }

    /// <summary>Whether the memory holds the matrix transposed (column-major rows).</summary>
    public bool Trans { get; }

    /// <summary>Row stride of the stored matrix (≥ its stored width).</summary>
    public int Ld { get; }

    /// <summary>Elements spanned by the stored matrix.</summary>
    public long Extent => Rows == 0 || Cols == 0 ? 0 : Trans ? (long)(Cols - 1) * Ld + Rows : (long)(Rows - 1) * Ld + Cols;

    /// <summary>
    /// Describes the last two dimensions of <paramref name="t"/> (strides <paramref name="rowStride"/>,
    /// <paramref name="colStride"/>) as a GEMM operand, or returns false when neither dimension has unit stride.
    /// </summary>
    public static bool TryCreate(Tensor t, int offset, int rows, int cols, int rowStride, int colStride, out GemmOperand operand)
    {
        if (rows <= 1 && cols <= 1)
        {
            operand = new GemmOperand(t, offset, rows, cols, false, Math.Max(cols, 1));
            return true;
        }
        if (cols == 1 || colStride == 1)
        {
            int ld = rows == 1 ? cols : rowStride;
            if (ld >= Math.Max(cols, 1))
            {
                operand = new GemmOperand(t, offset, rows, cols, false, ld);
                return true;
            }
        }
        if (rows == 1 || rowStride == 1)
        {
            int ld = cols == 1 ? rows : colStride;
            if (ld >= Math.Max(rows, 1))
            {
                operand = new GemmOperand(t, offset, rows, cols, true, ld);
                return true;
            }
        }
        operand = default;
        return false;
    }

    /// <summary>The last two dimensions of a 2-D-or-more tensor at its view offset, copying only if the layout demands it.</summary>
    public static GemmOperand ForMatrix(ref Tensor t)
    {
        int r = t.Rank;
        if (TryCreate(t, t.Offset, t.ShapeRef[r - 2], t.ShapeRef[r - 1], t.StridesRef[r - 2], t.StridesRef[r - 1], out var op)) return op;
        t = t.ContiguousCopy();
        TryCreate(t, t.Offset, t.ShapeRef[r - 2], t.ShapeRef[r - 1], t.StridesRef[r - 2], t.StridesRef[r - 1], out op);
        return op;
    }
}

/// <summary>Calls the right <see cref="Gemm"/> entry point for the B operand's dtype.</summary>
internal static unsafe class GemmDispatch
{
    /// <summary>C[m×n] = alpha·op(A)·op(B) + beta·C with C at <paramref name="c"/> (row stride <paramref name="ldc"/>).</summary>
    public static void Run(in GemmOperand a, in GemmOperand b, int m, int n, int k, float alpha, float* c, int ldc, float beta)
    {
        if (m == 0 || n == 0) return;
        var cSpan = new Span<float>(c, checked((int)((long)(m - 1) * ldc + n)));
        if (k == 0)
        {
            for (int i = 0; i < m; i++)
            {
                var row = cSpan.Slice(i * ldc, n);
                if (beta == 0f) row.Clear();
                else System.Numerics.Tensors.TensorPrimitives.Multiply(row, beta, row);
            }
            return;
        }
        if (a.Tensor.DType != DType.Float32)
            throw new NotSupportedException($"matmul: the left operand must be float32 but is {a.Tensor.Describe}; only the right operand (a weight) may be bfloat16/float16");
        var aSpan = new ReadOnlySpan<float>((float*)a.Tensor.Storage.Pointer + a.Offset, checked((int)a.Extent));
        switch (b.Tensor.DType)
        {
            case DType.Float32:
                Gemm.Sgemm(a.Trans, b.Trans, m, n, k, alpha, aSpan, a.Ld,
                    new ReadOnlySpan<float>((float*)b.Tensor.Storage.Pointer + b.Offset, checked((int)b.Extent)), b.Ld, beta, cSpan, ldc);
                break;
            case DType.BFloat16:
                Gemm.SgemmBf16(a.Trans, b.Trans, m, n, k, alpha, aSpan, a.Ld,
                    new ReadOnlySpan<ushort>((ushort*)b.Tensor.Storage.Pointer + b.Offset, checked((int)b.Extent)), b.Ld, beta, cSpan, ldc);
                break;
            case DType.Float16:
                Gemm.SgemmF16(a.Trans, b.Trans, m, n, k, alpha, aSpan, a.Ld,
                    new ReadOnlySpan<Half>((Half*)b.Tensor.Storage.Pointer + b.Offset, checked((int)b.Extent)), b.Ld, beta, cSpan, ldc);
                break;
            default:
                throw new NotSupportedException($"matmul: operand {b.Tensor.Describe} has an integer dtype");
        }
    }

    /// <summary>Batched float32 product: operand i of A, B and C starts at i·stride from the given operands.</summary>
    public static void RunBatched(in GemmOperand a, long strideA, in GemmOperand b, long strideB, int m, int n, int k,
        float* c, int ldc, long strideC, int batch)
    {
        if (batch == 0 || m == 0 || n == 0) return;
        if (batch == 1 || k == 0 || b.Tensor.DType != DType.Float32 || a.Tensor.DType != DType.Float32)
        {
            for (int i = 0; i < batch; i++)
            {
                var ai = new GemmOperand(a.Tensor, (int)(a.Offset + i * strideA), a.Rows, a.Cols, a.Trans, a.Ld);
                var bi = new GemmOperand(b.Tensor, (int)(b.Offset + i * strideB), b.Rows, b.Cols, b.Trans, b.Ld);
                Run(ai, bi, m, n, k, 1f, c + i * strideC, ldc, 0f);
            }
            return;
        }
        long aLen = (batch - 1) * strideA + a.Extent, bLen = (batch - 1) * strideB + b.Extent;
        long cLen = (batch - 1) * strideC + (long)(m - 1) * ldc + n;
        Gemm.SgemmBatched(a.Trans, b.Trans, m, n, k, 1f,
            new ReadOnlySpan<float>((float*)a.Tensor.Storage.Pointer + a.Offset, checked((int)aLen)), a.Ld, strideA,
            new ReadOnlySpan<float>((float*)b.Tensor.Storage.Pointer + b.Offset, checked((int)bLen)), b.Ld, strideB,
            0f, new Span<float>(c, checked((int)cLen)), ldc, strideC, batch);
    }
}
