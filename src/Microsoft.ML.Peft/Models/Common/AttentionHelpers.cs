using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Common;

/// <summary>Shape plumbing shared by every attention implementation, plus input validation for model forwards.</summary>
internal static class AttentionHelpers
{
    /// <summary>[B, T, H·D] → [B, H, T, D] as a view (no copy): the fused attention and rotary kernels read strided heads.</summary>
    public static Tensor SplitHeads(Tensor x, int heads, int headDim)
    {
        int b = x.Size(0), t = x.Size(1);
        return x.Reshape(b, t, heads, headDim).Transpose(1, 2);
    }

    /// <summary>[B, H, T, D] → [B, T, H·D] (one copy, which the next projection needs contiguous anyway).</summary>
    public static Tensor MergeHeads(Tensor x)
    {
        int b = x.Size(0), h = x.Size(1), t = x.Size(2), d = x.Size(3);
        return x.Transpose(1, 2).Reshape(b, t, h * d);
    }

    /// <summary>
    /// The additive key mask [B, S] (0 for real keys, −∞ for padding) that the fused attention adds to every score,
    /// built once per forward from an int32 keep-mask [B, S] (1 = real token); null when nothing is masked, which
    /// lets the kernel skip the add altogether.
    /// </summary>
    public static unsafe Tensor? AdditiveKeyMask(Tensor? attentionMask)
    {
        if (attentionMask is null) return null;
        var keep = attentionMask.AsReadOnlySpan<int>();
        bool any = false;
        foreach (int v in keep)
        {
            if (v == 0)
            {
                any = true;
                break;
            }
        }
        if (!any) return null;
        var additive = Tensor.Empty(attentionMask.ShapeArray());
        var a = additive.AsSpan<float>();
        for (int i = 0; i < keep.Length; i++) a[i] = keep[i] != 0 ? 0f : float.NegativeInfinity;
        return additive;
    }

    /// <summary>Checks int32 [batch, seq] token ids; returns (batch, seq).</summary>
    public static (int Batch, int Seq) CheckIds(Tensor inputIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        if (inputIds.DType != DType.Int32 || inputIds.Rank != 2)
            throw new ArgumentException($"input_ids {inputIds} must be an int32 tensor [batch, seq]");
        return (inputIds.Size(0), inputIds.Size(1));
    }

    /// <summary>Checks an optional int32 companion of the ids (attention mask, token types, positions): [batch, <paramref name="seq"/>], contiguous.</summary>
    public static Tensor? CheckCompanion(Tensor? t, string name, int batch, int seq)
    {
        if (t is null) return null;
        if (t.DType != DType.Int32 || t.Rank != 2 || t.Size(0) != batch || t.Size(1) != seq)
            throw new ArgumentException($"{name} {t} must be an int32 tensor [{batch}, {seq}]");
        return t.IsContiguous ? t : t.Contiguous();
    }
}
