using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>Mask and shape plumbing shared by the backbones' prompt handling.</summary>
internal static class PromptPlumbing
{
    /// <summary>Ones for <paramref name="count"/> leading positions, then the int32 [batch, seq] mask (null stays null).</summary>
    public static Tensor? PrependOnes(Tensor? attentionMask, int count)
    {
        if (attentionMask is null || count == 0) return attentionMask;
        int batch = attentionMask.Size(0), seq = attentionMask.Size(1);
        var mask = attentionMask.AsReadOnlySpan<int>();
        var extended = new int[batch * (count + seq)];
        for (int b = 0; b < batch; b++)
        {
            extended.AsSpan(b * (count + seq), count).Fill(1);
            mask.Slice(b * seq, seq).CopyTo(extended.AsSpan(b * (count + seq) + count));
        }
        return Tensor.FromInt32(extended, batch, count + seq);
    }

    /// <summary>
    /// Positions 0..n−1 of the virtual tokens in front of the real tokens' int32 [seq] or [batch, seq] positions; null
    /// stays null (the forward then numbers 0..n+seq−1).
    /// </summary>
    public static Tensor? PrependPromptPositions(Tensor? positionIds, int count)
    {
        if (positionIds is null || count == 0) return positionIds;
        if (positionIds.DType != DType.Int32 || positionIds.Rank is not (1 or 2))
            throw new ArgumentException($"position_ids {positionIds} must be an int32 tensor [batch, seq] or [seq]");
        var given = (positionIds.IsContiguous ? positionIds : positionIds.Contiguous()).AsReadOnlySpan<int>();
        int rows = positionIds.Rank == 2 ? positionIds.Size(0) : 1, seq = positionIds.Size(positionIds.Rank - 1);
        var result = new int[rows * (count + seq)];
        for (int r = 0; r < rows; r++)
        {
            for (int i = 0; i < count; i++) result[r * (count + seq) + i] = i;
            given.Slice(r * seq, seq).CopyTo(result.AsSpan(r * (count + seq) + count));
        }
        return positionIds.Rank == 2 ? Tensor.FromInt32(result, rows, count + seq) : Tensor.FromInt32(result, count + seq);
    }

    /// <summary>[n, hidden] prompt in front of [batch, seq, hidden] embeddings → [batch, n + seq, hidden].</summary>
    public static Tensor PrependPrompt(Tensor prompt, Tensor inputsEmbeds)
    {
        int batch = inputsEmbeds.Size(0), hidden = inputsEmbeds.Size(2);
        if (prompt.Rank != 2 || prompt.Size(1) != hidden)
            throw new InvalidOperationException($"the input prompt {prompt} is not [n, {hidden}]");
        return Tensor.Concat([prompt.Unsqueeze(0).Expand(batch, prompt.Size(0), hidden), inputsEmbeds], 1);
    }

    /// <summary>Layer <paramref name="layer"/>'s keys or values (<paramref name="offset"/> 0 or 1) of a [2L, kvH, n, d] table, broadcast to <paramref name="batch"/> rows.</summary>
    public static Tensor PrefixSlice(Tensor table, int layer, int offset, int batch)
    {
        var one = table.Select(0, 2 * layer + offset);
        return one.Unsqueeze(0).Expand(batch, one.Size(0), one.Size(1), one.Size(2));
    }

    /// <summary>Keys/values with the layer's prefix in front along the sequence axis (dim 2 of [B, H, S, D]).</summary>
    public static (Tensor Keys, Tensor Values) WithPrefix(Tensor? table, int layer, Tensor keys, Tensor values)
    {
        if (table is null) return (keys, values);
        int batch = keys.Size(0);
        if (table.Rank != 4 || table.Size(1) != keys.Size(1) || table.Size(3) != keys.Size(3))
            throw new InvalidOperationException($"the key/value prefix {table} does not fit keys {keys} (expected [2·layers, {keys.Size(1)}, n, {keys.Size(3)}])");
        return (Tensor.Concat([PrefixSlice(table, layer, 0, batch), keys], 2), Tensor.Concat([PrefixSlice(table, layer, 1, batch), values], 2));
    }

    /// <summary>The last <paramref name="seq"/> positions of [batch, n + seq, hidden] (the real tokens behind an input prompt).</summary>
    public static Tensor DropVirtualTokens(Tensor hidden, int seq) =>
        hidden.Size(1) == seq ? hidden : hidden.Narrow(1, hidden.Size(1) - seq, seq);

    /// <summary>A module with nothing in it: what <c>prompt_encoder</c> holds once a prompt method is unloaded.</summary>
    public sealed class EmptyModule : Module;
}
