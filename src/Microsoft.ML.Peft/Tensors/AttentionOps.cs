namespace Microsoft.ML.Peft.Tensors;

/// <summary>Fused scaled dot-product attention (memory-efficient, FlashAttention-style), with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>
    /// softmax(Q·Kᵀ·scale + mask)·V for this query tensor [batch, heads, seq_q, dim] with <paramref name="key"/>
    /// [batch, kvHeads, seq_k, dim] and <paramref name="value"/> [batch, kvHeads, seq_k, dimV]; heads % kvHeads must
    /// be 0 (grouped-query attention: query head h uses kv head h / (heads / kvHeads)). Returns a contiguous
    /// [batch, heads, seq_q, dimV].
    /// </summary>
    /// <param name="key">Keys.</param>
    /// <param name="value">Values.</param>
    /// <param name="mask">
    /// Optional padding mask per batch and key position, shape [batch or 1, (1, ...,) seq_k]: float32 = additive
    /// (e.g. 0 / −∞ or HF's extended mask), int32 = keep-mask (non-zero = attend).
    /// </param>
    /// <param name="causal">Hide future keys: query i sees keys j ≤ i + seq_k − seq_q (bottom-right aligned).</param>
    /// <param name="scale">Score scale; default 1/√dim.</param>
    /// <param name="dropout">Dropout probability on the attention probabilities (pass 0 in evaluation).</param>
    /// <param name="generator">Source of the dropout mask; required when <paramref name="dropout"/> &gt; 0.</param>
    /// <param name="slidingWindow">
    /// With <paramref name="causal"/>, also hide keys more than <c>slidingWindow − 1</c> positions back: query i sees
    /// keys j with i' − slidingWindow &lt; j ≤ i' (i' = i + seq_k − seq_q), as Hugging Face's Mistral/Qwen2 masks.
    /// Null for no window.
    /// </param>
    /// <remarks>
    /// Only the output and one log-sum-exp per query row are kept for backward; probabilities are recomputed there.
    /// Query rows that can see no key produce zeros (PyTorch would produce NaN). Operands may be strided views
    /// (e.g. transposed projections) as long as their last dimension is contiguous.
    /// </remarks>
    public Tensor ScaledDotProductAttention(Tensor key, Tensor value, Tensor? mask = null, bool causal = false, float? scale = null,
        float dropout = 0f, Generator? generator = null, int? slidingWindow = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        const string op = "scaled_dot_product_attention";
        RequireFloat32(op);
        key.RequireFloat32(op);
        value.RequireFloat32(op);
        if (Rank != 4 || key.Rank != 4 || value.Rank != 4)
            throw new ArgumentException($"{op}: query {Describe}, key {key.Describe} and value {value.Describe} must all be [batch, heads, seq, dim]");
        int b = shape[0], h = shape[1], t = shape[2], d = shape[3];
        int hkv = key.shape[1], s = key.shape[2];
        if (key.shape[0] != b || value.shape[0] != b || key.shape[3] != d || value.shape[1] != hkv || value.shape[2] != s)
            throw new ArgumentException($"{op}: incompatible shapes query {Describe}, key {key.Describe}, value {value.Describe}");
        if (hkv == 0 || h % hkv != 0)
            throw new ArgumentException($"{op}: query heads ({h}) must be a multiple of key/value heads ({hkv}); query {Describe}, key {key.Describe}");
        if (dropout is < 0f or >= 1f || float.IsNaN(dropout)) throw new ArgumentOutOfRangeException(nameof(dropout), $"{op}: dropout {dropout} is not in [0, 1)");
        if (dropout > 0f && generator is null) throw new ArgumentNullException(nameof(generator), $"{op}: dropout needs a generator");
        if (slidingWindow is not null && (!causal || slidingWindow <= 0))
            throw new ArgumentException($"{op}: a sliding window ({slidingWindow}) must be positive and needs causal attention");
        if (mask is not null && mask.RequiresGrad) throw new NotSupportedException($"{op}: gradients with respect to the mask are not supported");
        var q = strides[3] == 1 ? this : ContiguousCopy();
        var k = key.strides[3] == 1 ? key : key.ContiguousCopy();
        var v = value.strides[3] == 1 ? value : value.ContiguousCopy();
        var additive = mask is null ? null : AdditiveMask(mask, b, s, op);
        var problem = new FlashAttention.Problem
        {
            B = b, H = h, Hkv = hkv, T = t, S = s, D = d, Dv = value.shape[3],
            Q = (nint)q.Ptr, K = (nint)k.Ptr, V = (nint)v.Ptr,
            Qs0 = q.strides[0], Qs1 = q.strides[1], Qs2 = q.strides[2],
            Ks0 = k.strides[0], Ks1 = k.strides[1], Ks2 = k.strides[2],
            Vs0 = v.strides[0], Vs1 = v.strides[1], Vs2 = v.strides[2],
            Mask = additive is null ? 0 : (nint)additive.Ptr,
            MaskBatchStride = additive is null || additive.shape[0] == 1 ? 0 : s,
            Causal = causal,
            Window = slidingWindow ?? 0,
            Scale = scale ?? 1f / MathF.Sqrt(d),
            DropoutP = dropout,
            Dropout = dropout > 0f ? generator : null,
            DropoutStart = dropout > 0f ? generator!.Reserve((long)b * h * t * s) : 0,
        };
        var y = NewOutput([b, h, t, problem.Dv], op);
        var lse = NewOutput([b, h, t], op + "_logsumexp");
        if (y.count > 0) FlashAttention.Forward(problem, y.Ptr, lse.Ptr);
        if (Autograd.ShouldRecord(this, key, value))
        {
            var node = Autograd.Record(op, y, [this, key, value], (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                var p = problem;
                p.Q = (nint)q.Ptr;
                p.K = (nint)k.Ptr;
                p.V = (nint)v.Ptr;
                if (additive is not null) p.Mask = (nint)additive.Ptr;
                var dq = node.NeedsGrad(0) ? Zeros(b, h, t, d) : null;
                var dk = node.NeedsGrad(1) ? Zeros(b, hkv, s, d) : null;
                var dv = node.NeedsGrad(2) ? Zeros(b, hkv, s, p.Dv) : null;
                FlashAttention.Backward(p, y.Ptr, lse.Ptr, gc.Ptr, dq is null ? null : dq.Ptr, dk is null ? null : dk.Ptr, dv is null ? null : dv.Ptr);
                if (dq is not null) node.AccumulateGrad(0, dq);
                if (dk is not null) node.AccumulateGrad(1, dk);
                if (dv is not null) node.AccumulateGrad(2, dv);
            });
            if (additive is null) node.SaveForBackward(q, k, v, y, lse);
            else node.SaveForBackward(q, k, v, y, lse, additive);
        }
        return Autograd.Checked(y, this, key, value);
    }

    /// <summary>The mask as a contiguous additive float32 [1 or batch, seq_k] tensor.</summary>
    private static Tensor AdditiveMask(Tensor mask, int b, int s, string op)
    {
        bool shapeOk = mask.Rank >= 2 && mask.shape[^1] == s && (mask.shape[0] == b || mask.shape[0] == 1);
        for (int i = 1; shapeOk && i < mask.Rank - 1; i++) shapeOk = mask.shape[i] == 1;
        if (!shapeOk)
            throw new ArgumentException($"{op}: mask {mask.Describe} must be [batch ({b}) or 1, (1, ...,) seq_k ({s})]: one row per batch over key positions");
        int rows = mask.shape[0];
        var flat = mask.View([rows, s], [mask.strides[0], mask.strides[^1]], mask.offset, "mask");
        if (mask.DType == DType.Float32) return flat.IsContiguous ? flat : flat.ContiguousCopy("mask");
        if (mask.DType != DType.Int32) throw new ArgumentException($"{op}: mask {mask.Describe} must be float32 (additive) or int32 (keep-mask)");
        var keep = flat.ContiguousCopy("mask");
        var additive = NewOutput([rows, s], "mask");
        int* pk = keep.PtrAs<int>();
        float* pa = additive.Ptr;
        for (int i = 0; i < rows * s; i++) pa[i] = pk[i] != 0 ? 0f : float.NegativeInfinity;
        return additive;
    }
}
