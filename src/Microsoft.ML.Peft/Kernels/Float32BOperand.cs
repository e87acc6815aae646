namespace Microsoft.ML.Peft.Kernels;

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
