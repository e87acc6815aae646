using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Shared part of the dense B operands: a row-major matrix in <see cref="ReadOnlyMemory{T}"/> with a row stride,
/// stored k×n, or n×k when <c>transposed</c> (the usual layout of a linear layer's [out, in] weight).
/// </summary>
/// <typeparam name="T">The storage element type.</typeparam>
public abstract class StridedBOperand<T> : GemmBOperand
    where T : unmanaged
{
    /// <summary>Validates the storage against the logical shape.</summary>
    /// <param name="data">The stored matrix.</param>
    /// <param name="rows">k: rows of op(B).</param>
    /// <param name="columns">n: columns of op(B).</param>
    /// <param name="leadingDimension">Row stride of the stored matrix in elements (≥ its width: n, or k when transposed).</param>
    /// <param name="transposed">True when the stored matrix is n×k and op(B) is its transpose.</param>
    protected StridedBOperand(ReadOnlyMemory<T> data, int rows, int columns, int leadingDimension, bool transposed)
        : base(rows, columns)
    {
        int storedRows = transposed ? columns : rows, storedColumns = transposed ? rows : columns;
        GemmArguments.CheckMatrix(nameof(data), data.Length, storedRows, storedColumns, leadingDimension);
        Data = data;
        LeadingDimension = leadingDimension;
        Transposed = transposed;
    }

    /// <summary>The stored matrix.</summary>
    public ReadOnlyMemory<T> Data { get; }

    /// <summary>Row stride of the stored matrix in elements.</summary>
    public int LeadingDimension { get; }

    /// <summary>True when the stored matrix is n×k.</summary>
    public bool Transposed { get; }

    /// <inheritdoc/>
    protected sealed override unsafe void PackPanelsCore(int rowStart, int rowCount, int columnStart, int columnCount, int panelWidth, Span<float> destination)
    {
        if (rowCount == 0 || columnCount == 0) return;
        fixed (T* data = Data.Span)
        fixed (float* dest = &MemoryMarshal.GetReference(destination))
        {
            Pack(data, rowStart, rowCount, columnStart, columnCount, panelWidth, dest, GemmIsaInfo.Best);
        }
    }

    private protected abstract unsafe void Pack(T* data, int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa);
}
