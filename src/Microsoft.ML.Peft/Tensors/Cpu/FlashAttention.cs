using System.Numerics.Tensors;
using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Memory-efficient exact attention (FlashAttention-style) on [batch, heads, seq, dim] operands whose last dimension
/// is contiguous. Forward walks key blocks for each block of query rows with an online softmax (running max m and
/// sum l per row), so only a BlockQ×BlockK score tile exists at a time; it keeps the output and one log-sum-exp per
/// row. Backward recomputes each probability tile from the saved log-sum-exp (P = exp(S − L)) and accumulates dQ,
/// dK, dV tile by tile with GEMMs. Memory is O(seq) per row instead of O(seq²) per head.
/// </summary>
/// <remarks>
/// Grouped-query attention: query head h reads key/value head h / (H / Hkv), as HF's repeat_kv. Causal masking is
/// bottom-right aligned (query i sees keys j ≤ i + S − T), which equals PyTorch's is_causal when T = S and is what a
/// KV cache needs when T &lt; S; key tiles entirely in the future are skipped. A row with no visible key outputs 0
/// and gets zero gradients. Optional dropout on the probabilities draws its mask from a counter-based
/// <see cref="Generator"/> at a position fixed by (batch, head, query, key), so backward regenerates the same mask
/// instead of storing it; the softmax normaliser uses the undropped probabilities, as PyTorch. Forward is parallel over (batch, head, query block); backward over (batch, kv head) so
/// that each task owns its dK/dV slices without locks.
/// </remarks>
internal static unsafe class FlashAttention
{
    private const int BlockQ = 64;
    private const int BlockK = 64;

    /// <summary>Shapes, strides and pointers of one attention problem.</summary>
    internal struct Problem
    {
        public int B, H, Hkv, T, S, D, Dv;
        public nint Q, K, V;
        public int Qs0, Qs1, Qs2, Ks0, Ks1, Ks2, Vs0, Vs1, Vs2;
        public nint Mask;          // additive float [Bm, S] or 0
        public int MaskBatchStride; // S, or 0 when one mask row serves every batch
        public bool Causal;
        public int Window;          // > 0: causal rows also hide keys j ≤ i + S − T − Window (sliding window)
        public float Scale;
        public float DropoutP;         // 0: no dropout
        public Generator? Dropout;     // mask of element (b, h, i, j) = draw at DropoutStart + ((b·H + h)·T + i)·S + j
        public long DropoutStart;

        public readonly float* QRow(int b, int h, int i) => (float*)Q + (long)b * Qs0 + (long)h * Qs1 + (long)i * Qs2;

        public readonly float* KRow(int b, int hk, int j) => (float*)K + (long)b * Ks0 + (long)hk * Ks1 + (long)j * Ks2;

        public readonly float* VRow(int b, int hk, int j) => (float*)V + (long)b * Vs0 + (long)hk * Vs1 + (long)j * Vs2;

        /// <summary>Multiplies row r of a probability tile by the dropout mask Z ∈ {0, 1/(1−p)} of keys j0..j0+n.</summary>
        public readonly void ApplyDropout(Span<float> row, long bh, int i, int j0)
        {
            long position = DropoutStart + (bh * T + i) * S + j0;
            float keep = 1f / (1f - DropoutP);
            for (int c = 0; c < row.Length; c++) row[c] = Dropout!.UniformAt(position + c) >= DropoutP ? row[c] * keep : 0f;
        }

        /// <summary>Exclusive end of the keys visible to query rows up to <paramref name="lastRow"/>.</summary>
        public readonly int KeyEnd(int lastRow) => Causal ? Math.Clamp(lastRow + S - T + 1, 0, S) : S;
    }

    public static void Forward(Problem p, float* output, float* lse)
    {
        int qBlocks = (p.T + BlockQ - 1) / BlockQ;
        int rep = p.H / p.Hkv;
        nint po = (nint)output, pl = (nint)lse;
        ParallelHelper.For(p.B * p.H * qBlocks, (long)BlockQ * p.S * (p.D + p.Dv), (t0, t1) =>
        {
            float* s = stackalloc float[BlockQ * BlockK];
            float* m = stackalloc float[BlockQ];
            float* l = stackalloc float[BlockQ];
            for (int task = t0; task < t1; task++)
            {
                int qb = task % qBlocks, bh = task / qBlocks, b = bh / p.H, h = bh % p.H, hk = h / rep;
                int i0 = qb * BlockQ, br = Math.Min(BlockQ, p.T - i0);
                float* o = (float*)po + ((long)bh * p.T + i0) * p.Dv;
                new Span<float>(o, br * p.Dv).Clear();
                for (int r = 0; r < br; r++)
                {
                    m[r] = float.NegativeInfinity;
                    l[r] = 0f;
                }
                int keyEnd = p.KeyEnd(i0 + br - 1);
                for (int j0 = 0; j0 < keyEnd; j0 += BlockK)
                {
                    int bc = Math.Min(BlockK, keyEnd - j0);
                    Scores(p, b, h, hk, i0, br, j0, bc, s);
                    for (int r = 0; r < br; r++)
                    {
                        var row = new Span<float>(s + r * BlockK, bc);
                        float mx = TensorPrimitives.Max<float>(row);
                        float mNew = MathF.Max(m[r], mx);
                        if (float.IsNegativeInfinity(mNew))
                        {
                            row.Clear();
                            continue;
                        }
                        TensorPrimitives.Subtract(row, mNew, row);
                        TensorPrimitives.Exp(row, row);
                        float alpha = MathF.Exp(m[r] - mNew);
                        l[r] = l[r] * alpha + TensorPrimitives.Sum<float>(row);
                        if (p.DropoutP > 0f) p.ApplyDropout(row, bh, i0 + r, j0);   // the normaliser l uses undropped P
                        if (alpha != 1f)
                        {
                            var orow = new Span<float>(o + (long)r * p.Dv, p.Dv);
                            TensorPrimitives.Multiply(orow, alpha, orow);
                        }
                        m[r] = mNew;
                    }
                    // O += P · V_block
                    Mm(false, false, br, p.Dv, bc, 1f, s, BlockK, p.VRow(b, hk, j0), p.Vs2, 1f, o, p.Dv);
                }
                for (int r = 0; r < br; r++)
                {
                    var orow = new Span<float>(o + (long)r * p.Dv, p.Dv);
                    float* L = (float*)pl + (long)bh * p.T + i0 + r;
                    if (l[r] == 0f)
                    {
                        orow.Clear();
                        *L = float.PositiveInfinity;   // makes every recomputed probability exp(S − L) zero
                    }
                    else
                    {
                        TensorPrimitives.Multiply(orow, 1f / l[r], orow);
                        *L = m[r] + MathF.Log(l[r]);
                    }
                }
            }
        });
    }

    /// <summary>Gradients for the tensors whose pointer is non-zero (dq [B,H,T,D], dk [B,Hkv,S,D], dv [B,Hkv,S,Dv], zeroed).</summary>
    public static void Backward(Problem p, float* output, float* lse, float* gradOutput, float* dq, float* dk, float* dv)
    {
        int rep = p.H / p.Hkv;
        int qBlocks = (p.T + BlockQ - 1) / BlockQ;
        nint po = (nint)output, pl = (nint)lse, pg = (nint)gradOutput, pdq = (nint)dq, pdk = (nint)dk, pdv = (nint)dv;
        ParallelHelper.For(p.B * p.Hkv, (long)rep * p.T * p.S * (2 * p.D + 2 * p.Dv), (t0, t1) =>
        {
            float* s = stackalloc float[BlockQ * BlockK];
            float* dp = stackalloc float[BlockQ * BlockK];
            float* dRow = stackalloc float[BlockQ];
            for (int task = t0; task < t1; task++)
            {
                int b = task / p.Hkv, hk = task % p.Hkv;
                float* dkBase = pdk == 0 ? null : (float*)pdk + (long)task * p.S * p.D;
                float* dvBase = pdv == 0 ? null : (float*)pdv + (long)task * p.S * p.Dv;
                for (int h = hk * rep; h < (hk + 1) * rep; h++)
                {
                    long bh = (long)b * p.H + h;
                    for (int qb = 0; qb < qBlocks; qb++)
                    {
                        int i0 = qb * BlockQ, br = Math.Min(BlockQ, p.T - i0);
                        float* go = (float*)pg + (bh * p.T + i0) * p.Dv;
                        float* o = (float*)po + (bh * p.T + i0) * p.Dv;
                        float* L = (float*)pl + bh * p.T + i0;
                        float* dqRows = pdq == 0 ? null : (float*)pdq + (bh * p.T + i0) * p.D;
                        for (int r = 0; r < br; r++)
                            dRow[r] = TensorPrimitives.Dot(new ReadOnlySpan<float>(go + (long)r * p.Dv, p.Dv), new ReadOnlySpan<float>(o + (long)r * p.Dv, p.Dv));
                        int keyEnd = p.KeyEnd(i0 + br - 1);
                        for (int j0 = 0; j0 < keyEnd; j0 += BlockK)
                        {
                            int bc = Math.Min(BlockK, keyEnd - j0);
                            Scores(p, b, h, hk, i0, br, j0, bc, s);
                            for (int r = 0; r < br; r++)
                            {
                                var row = new Span<float>(s + r * BlockK, bc);
                                TensorPrimitives.Subtract(row, L[r], row);
                                TensorPrimitives.Exp(row, row);            // P
                            }
                            bool needDs = dqRows is not null || dkBase is not null;
                            if (needDs)
                            {
                                // dS = P ∘ (Z ∘ dP − D) with dP = dO·Vᵀ (Z = dropout mask, 1 without dropout).
                                Mm(false, true, br, bc, p.Dv, 1f, go, p.Dv, p.VRow(b, hk, j0), p.Vs2, 0f, dp, BlockK);
                                for (int r = 0; r < br; r++)
                                {
                                    var dpr = new Span<float>(dp + r * BlockK, bc);
                                    if (p.DropoutP > 0f) p.ApplyDropout(dpr, bh, i0 + r, j0);
                                    TensorPrimitives.Subtract(dpr, dRow[r], dpr);
                                    TensorPrimitives.Multiply(dpr, new ReadOnlySpan<float>(s + r * BlockK, bc), dpr);
                                }
                            }
                            if (dvBase is not null)
                            {
                                // dV += (Z ∘ P)ᵀ·dO
                                if (p.DropoutP > 0f)
                                {
                                    for (int r = 0; r < br; r++) p.ApplyDropout(new Span<float>(s + r * BlockK, bc), bh, i0 + r, j0);
                                }
                                Mm(true, false, bc, p.Dv, br, 1f, s, BlockK, go, p.Dv, 1f, dvBase + (long)j0 * p.Dv, p.Dv);
                            }
                            if (!needDs) continue;
                            if (dqRows is not null)
                                Mm(false, false, br, p.D, bc, p.Scale, dp, BlockK, p.KRow(b, hk, j0), p.Ks2, 1f, dqRows, p.D);
                            if (dkBase is not null)
                                Mm(true, false, bc, p.D, br, p.Scale, dp, BlockK, p.QRow(b, h, i0), p.Qs2, 1f, dkBase + (long)j0 * p.D, p.D);
                        }
                    }
                }
            }
        });
    }

    /// <summary>S = scale·Q_blk·K_blkᵀ + mask, with −∞ for causally hidden keys; rows of <see cref="BlockK"/> floats.</summary>
    private static void Scores(in Problem p, int b, int h, int hk, int i0, int br, int j0, int bc, float* s)
    {
        Mm(false, true, br, bc, p.D, p.Scale, p.QRow(b, h, i0), p.Qs2, p.KRow(b, hk, j0), p.Ks2, 0f, s, BlockK);
        float* mask = p.Mask == 0 ? null : (float*)p.Mask + (long)b * p.MaskBatchStride + j0;
        for (int r = 0; r < br; r++)
        {
            var row = new Span<float>(s + r * BlockK, bc);
            if (mask is not null) TensorPrimitives.Add(row, new ReadOnlySpan<float>(mask, bc), row);
            if (p.Causal)
            {
                int firstHidden = i0 + r + p.S - p.T + 1 - j0;
                if (firstHidden < bc) row[Math.Max(firstHidden, 0)..].Fill(float.NegativeInfinity);
                if (p.Window > 0)
                {
                    int firstVisible = i0 + r + p.S - p.T - p.Window + 1 - j0;
                    if (firstVisible > 0) row[..Math.Min(firstVisible, bc)].Fill(float.NegativeInfinity);
                }
            }
        }
    }

    /// <summary>Sgemm on raw pointers (spans sized to exactly what each operand spans).</summary>
    private static void Mm(bool ta, bool tb, int m, int n, int k, float alpha, float* a, int lda, float* b, int ldb, float beta, float* c, int ldc)
    {
        if (m == 0 || n == 0) return;
        long aLen = ta ? (long)(k - 1) * lda + m : (long)(m - 1) * lda + k;
        long bLen = tb ? (long)(n - 1) * ldb + k : (long)(k - 1) * ldb + n;
        long cLen = (long)(m - 1) * ldc + n;
        Gemm.Sgemm(ta, tb, m, n, k, alpha, new ReadOnlySpan<float>(a, (int)aLen), lda, new ReadOnlySpan<float>(b, (int)bLen), ldb,
            beta, new Span<float>(c, (int)cLen), ldc);
    }
}
