namespace Microsoft.ML.Peft.Kernels;

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
