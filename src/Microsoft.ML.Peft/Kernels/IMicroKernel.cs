namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// A register-blocked GEMM micro-kernel and the cache blocking that feeds it (GotoBLAS/BLIS structure).
/// Implemented by empty structs so that the driver, generic over the kernel, is specialised by the JIT: the tile shape
/// and blocking become constants and the kernel call is direct, with no virtual dispatch on the hot path.
/// </summary>
internal unsafe interface IMicroKernel
{
    /// <summary>Rows of the register tile (rows of C per micro-panel of packed A).</summary>
    static abstract int MR { get; }

    /// <summary>Columns of the register tile (columns of C per micro-panel of packed B).</summary>
    static abstract int NR { get; }

    /// <summary>Depth of one packed panel pair: a kc×NR micro-panel of B should stay in L1 across the ir loop.</summary>
    static abstract int KC { get; }

    /// <summary>Rows of one packed A block (mc×kc should sit in L2). A multiple of <see cref="MR"/>.</summary>
    static abstract int MC { get; }

    /// <summary>Columns of one packed B panel (kc×nc shared by all threads, sits in L3). A multiple of <see cref="NR"/>.</summary>
    static abstract int NC { get; }

    /// <summary>The instruction set the kernel needs; packing routines use the same one.</summary>
    static abstract GemmIsa Isa { get; }

    /// <summary>
    /// <c>C[MR×NR] = alpha · Σ_p a[p·MR + r] · b[p·NR + j] + beta · C</c> with C at <paramref name="c"/>, row stride
    /// <paramref name="ldc"/>. When <paramref name="beta"/> is 0, C is written without being read.
    /// </summary>
    static abstract void Run(int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta);

    /// <summary>
    /// As <see cref="Run"/> for an edge tile of <paramref name="height"/> &lt; MR rows: only those rows of C are read
    /// or written, and the work done is close to height rows' worth rather than MR.
    /// </summary>
    static abstract void RunRows(int height, int kc, float* a, float* b, float* c, nint ldc, float alpha, float beta);
}
