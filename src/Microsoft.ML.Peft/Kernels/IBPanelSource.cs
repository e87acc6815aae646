namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// Internal form of a B operand for the GEMM driver: packs a kc×nc block of op(B), starting at (k0, n0), into
/// ceil(nc/nr) panels of kc×nr floats (layout in <see cref="BPacking"/>). Implemented by structs so the driver, generic
/// over the source, calls it directly; <see cref="ManagedBSource"/> adapts the public <see cref="GemmBOperand"/>.
/// </summary>
/// <remarks>Called concurrently from several threads on disjoint column ranges; implementations hold no mutable state.</remarks>
internal unsafe interface IBPanelSource
{
    void Pack(int k0, int kc, int n0, int nc, int nr, float* dest, GemmIsa isa);

    /// <summary>k slices must start at multiples of this (see <see cref="GemmBOperand.RowGranularity"/>).</summary>
    int RowGranularity { get; }
}
