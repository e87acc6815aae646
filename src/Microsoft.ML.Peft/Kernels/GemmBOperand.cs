namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// The right-hand operand of <see cref="Gemm.Sgemm(bool, int, float, ReadOnlySpan{float}, int, GemmBOperand, float, Span{float}, int)"/>
/// as a source of packed fp32 panels: a k×n matrix op(B) in any storage format (fp32, bfloat16, half, and later
/// block-quantised 4-bit weights) that the GEMM asks, block by block, to write straight into its packing buffer.
/// </summary>
/// <remarks>
/// <para>
/// Packed layout (what <see cref="PackPanelsCore"/> must write): the block <c>op(B)[rowStart .. rowStart+rowCount,
/// columnStart .. columnStart+columnCount]</c> becomes ceil(columnCount / panelWidth) consecutive panels of
/// <c>rowCount × panelWidth</c> floats. Panel q starts at <c>destination[q · rowCount · panelWidth]</c>; inside it,
/// element (p, j) = <c>op(B)[rowStart + p, columnStart + q·panelWidth + j]</c> is at <c>p · panelWidth + j</c>; columns
/// past the block end are 0.
/// </para>
/// <para>
/// The GEMM calls <see cref="PackPanels"/> from several threads at once on disjoint column ranges, so implementations
/// must be thread-safe (stateless apart from the immutable weight). A format that decodes in blocks (e.g. 64 weights
/// per scale) should decode into the destination directly, never into a full fp32 copy of the matrix, and can declare
/// its block length in <see cref="RowGranularity"/>.
/// </para>
/// <para>
/// What the GEMM asks for: blocks of at most a few hundred rows (its kc, 384 with AVX-512) by a few thousand columns
/// (its nc, 2048 with AVX-512), or a share of such a block when threads split it; <c>panelWidth</c> is the
/// micro-kernel's NR: 32 with AVX-512, 16 with AVX2, 4 otherwise.
/// </para>
/// </remarks>
public abstract class GemmBOperand
{
    /// <summary>Creates an operand whose logical (already transposed, if stored transposed) shape is rows×columns.</summary>
    /// <param name="rows">k: rows of op(B), the reduction dimension.</param>
    /// <param name="columns">n: columns of op(B), the output width.</param>
    protected GemmBOperand(int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        Rows = rows;
        Columns = columns;
    }

    /// <summary>k: rows of op(B).</summary>
    public int Rows { get; }

    /// <summary>n: columns of op(B).</summary>
    public int Columns { get; }

    /// <summary>
    /// Every block the GEMM requests starts at a row (k index) that is a multiple of this, so a format stored in blocks
    /// along k (e.g. 64 weights per scale) can decode whole blocks; the last block ends at <see cref="Rows"/>. 1 by
    /// default; keep it at most a few hundred, since a k slice spans at least one granule.
    /// </summary>
    public virtual int RowGranularity => 1;

    /// <summary>
    /// Writes the block at (<paramref name="rowStart"/>, <paramref name="columnStart"/>) of op(B), of
    /// <paramref name="rowCount"/> × <paramref name="columnCount"/> elements, into <paramref name="destination"/> in the
    /// packed layout described on the class, with panels of <paramref name="panelWidth"/> columns.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The block lies outside the matrix or the destination is too short.</exception>
    public void PackPanels(int rowStart, int rowCount, int columnStart, int columnCount, int panelWidth, Span<float> destination)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(panelWidth, 1);
        if (rowStart < 0 || rowCount < 0 || rowStart > Rows - rowCount)
            throw new ArgumentOutOfRangeException(nameof(rowCount), $"Rows [{rowStart}, {rowStart + rowCount}) are outside the operand's {Rows} rows.");
        if (columnStart < 0 || columnCount < 0 || columnStart > Columns - columnCount)
            throw new ArgumentOutOfRangeException(nameof(columnCount), $"Columns [{columnStart}, {columnStart + columnCount}) are outside the operand's {Columns} columns.");
        long needed = (long)((columnCount + panelWidth - 1) / panelWidth) * rowCount * panelWidth;
        if (destination.Length < needed)
            throw new ArgumentOutOfRangeException(nameof(destination), $"The destination holds {destination.Length} floats; {needed} are needed.");
        PackPanelsCore(rowStart, rowCount, columnStart, columnCount, panelWidth, destination);
    }

    /// <summary>
    /// Implements <see cref="PackPanels"/>; the arguments have been validated. Runs concurrently on disjoint blocks.
    /// </summary>
    protected abstract void PackPanelsCore(int rowStart, int rowCount, int columnStart, int columnCount, int panelWidth, Span<float> destination);
}
