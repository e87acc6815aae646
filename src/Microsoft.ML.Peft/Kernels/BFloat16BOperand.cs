namespace Microsoft.ML.Peft.Kernels;

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
