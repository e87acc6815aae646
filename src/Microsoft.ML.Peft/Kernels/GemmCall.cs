namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// One validated product <c>C = alpha·op(A)·op(B) + beta·C</c> with A and C pinned (B comes as an
/// <see cref="IBPanelSource"/>). Pointers stay valid for the whole call because the caller keeps them fixed.
/// </summary>
internal readonly unsafe struct GemmCall(
    bool transA, int m, int n, int k, float alpha, float* a, nint lda, float beta, float* c, nint ldc)
{
    public bool TransA => transA;

    public int M => m;

    public int N => n;

    public int K => k;

    public float Alpha => alpha;

    public float* A => a;

    public nint Lda => lda;

    public float Beta => beta;

    public float* C => c;

    public nint Ldc => ldc;
}
