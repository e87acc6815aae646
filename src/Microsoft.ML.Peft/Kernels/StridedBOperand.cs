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

/// <summary>An fp32 B operand.</summary>
/// <param name="data">The stored matrix.</param>
/// <param name="rows">k: rows of op(B).</param>
/// <param name="columns">n: columns of op(B).</param>
/// <param name="leadingDimension">Row stride of the stored matrix in elements.</param>
/// <param name="transposed">True when the stored matrix is n×k.</param>
public sealed class Float32BOperand(ReadOnlyMemory<float> data, int rows, int columns, int leadingDimension, bool transposed)
    : StridedBOperand<float>(data, rows, columns, leadingDimension, transposed)
{
    private protected override unsafe void Pack(float* data, int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa) =>
        new F32BSource(data, LeadingDimension, Transposed).Pack(k0, kc, n0, nc, nr, dest, isa);
}

/// <summary>A bfloat16 B operand (raw bits), widened to fp32 while packing.</summary>
/// <param name="data">The stored matrix as bfloat16 bit patterns.</param>
/// <param name="rows">k: rows of op(B).</param>
/// <param name="columns">n: columns of op(B).</param>
/// <param name="leadingDimension">Row stride of the stored matrix in elements.</param>
/// <param name="transposed">True when the stored matrix is n×k.</param>
public sealed class BFloat16BOperand(ReadOnlyMemory<ushort> data, int rows, int columns, int leadingDimension, bool transposed)
    : StridedBOperand<ushort>(data, rows, columns, leadingDimension, transposed)
{
    private protected override unsafe void Pack(ushort* data, int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa) =>
        new WideningBSource<ushort, Bf16Format>(data, LeadingDimension, Transposed).Pack(k0, kc, n0, nc, nr, dest, isa);
}

/// <summary>An IEEE half-precision B operand, widened to fp32 while packing.</summary>
/// <param name="data">The stored matrix.</param>
/// <param name="rows">k: rows of op(B).</param>
/// <param name="columns">n: columns of op(B).</param>
/// <param name="leadingDimension">Row stride of the stored matrix in elements.</param>
/// <param name="transposed">True when the stored matrix is n×k.</param>
public sealed class HalfBOperand(ReadOnlyMemory<Half> data, int rows, int columns, int leadingDimension, bool transposed)
    : StridedBOperand<Half>(data, rows, columns, leadingDimension, transposed)
{
    private protected override unsafe void Pack(Half* data, int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa) =>
        new WideningBSource<Half, HalfFormat>(data, LeadingDimension, Transposed).Pack(k0, kc, n0, nc, nr, dest, isa);
}
