using System.Runtime.CompilerServices;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>Eight ints stored inline (no heap allocation) for loop plans.</summary>
[InlineArray(MaxRank)]
internal struct Int8Dims
{
    public const int MaxRank = 8;
    private int element;
}

/// <summary>
/// A row-wise iteration plan over a contiguous output and up to two strided (possibly broadcast) inputs.
/// Dimensions of size 1 are dropped and adjacent dimensions that are contiguous with each other for every operand
/// are merged, so most layouts become one long row (one vectorised call) or rows of a matrix.
/// </summary>
/// <remarks>
/// A row is the innermost collapsed dimension; <see cref="Offsets"/> decomposes a row index into per-operand element
/// offsets, so any range of rows can be processed independently (parallel chunks).
/// Operand 0 is always the contiguous output; its stride in the last dimension is 1.
/// </remarks>
internal struct StridedLoop
{
    private Int8Dims dims;
    private Int8Dims stridesA;
    private Int8Dims stridesB;
    private Int8Dims stridesOut;
    private int rank;

    /// <summary>Elements per row.</summary>
    public int RowLength { get; private set; }

    /// <summary>Number of rows.</summary>
    public int RowCount { get; private set; }

    /// <summary>Element stride of input A within a row (0 when broadcast along the row).</summary>
    public int RowStrideA { get; private set; }

    /// <summary>Element stride of input B within a row.</summary>
    public int RowStrideB { get; private set; }

    /// <summary>Plans the loop for output shape <paramref name="outShape"/> with inputs A (and optionally B)
    /// broadcast to it (right-aligned NumPy rules; the caller has validated the shapes).</summary>
    public static StridedLoop Create(ReadOnlySpan<int> outShape, Tensor a, Tensor? b, string op)
    {
        var loop = default(StridedLoop);
        int r = outShape.Length;
        Span<int> outStrides = stackalloc int[Math.Max(r, 1)];
        int s = 1;
        for (int d = r - 1; d >= 0; d--)
        {
            outStrides[d] = s;
            s *= Math.Max(outShape[d], 1);
        }
        int kept = 0;
        for (int d = 0; d < r; d++)
        {
            int size = outShape[d];
            if (size == 1) continue;
            int sa = BroadcastStride(a, d, r);
            int sb = b is null ? 0 : BroadcastStride(b, d, r);
            int so = outStrides[d];
            if (kept > 0 && loop.stridesA[kept - 1] == sa * size && loop.stridesB[kept - 1] == sb * size &&
                loop.stridesOut[kept - 1] == so * size)
            {
                loop.dims[kept - 1] *= size;
                loop.stridesA[kept - 1] = sa;
                loop.stridesB[kept - 1] = sb;
                loop.stridesOut[kept - 1] = so;
                continue;
            }
            if (kept == Int8Dims.MaxRank)
                throw new NotSupportedException($"{op}: layout of {ShapeText.Format(outShape)} needs more than {Int8Dims.MaxRank} strided dimensions");
            loop.dims[kept] = size;
            loop.stridesA[kept] = sa;
            loop.stridesB[kept] = sb;
            loop.stridesOut[kept] = so;
            kept++;
        }
        if (kept == 0)
        {
            loop.dims[0] = ShapeText.Count(outShape) == 0 ? 0 : 1;
            loop.stridesA[0] = loop.stridesB[0] = 0;
            loop.stridesOut[0] = 1;
            kept = 1;
        }
        loop.rank = kept;
        loop.RowLength = loop.dims[kept - 1];
        loop.RowStrideA = loop.stridesA[kept - 1];
        loop.RowStrideB = loop.stridesB[kept - 1];
        int rows = 1;
        for (int d = 0; d < kept - 1; d++) rows *= loop.dims[d];
        loop.RowCount = loop.RowLength == 0 ? 0 : rows;
        return loop;
    }

    /// <summary>Element offsets (relative to each operand's view origin) of the first element of row <paramref name="row"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly void Offsets(int row, out int outOffset, out int aOffset, out int bOffset)
    {
        outOffset = 0;
        aOffset = 0;
        bOffset = 0;
        for (int d = rank - 2; d >= 0; d--)
        {
            int size = dims[d];
            int i = row % size;
            row /= size;
            outOffset += i * stridesOut[d];
            aOffset += i * stridesA[d];
            bOffset += i * stridesB[d];
        }
    }

    private static int BroadcastStride(Tensor t, int outDim, int outRank)
    {
        int d = outDim - (outRank - t.Rank);
        if (d < 0 || t.ShapeRef[d] == 1) return 0;
        return t.StridesRef[d];
    }
}
