using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// A right-padded batch of <see cref="CausalLmSequence"/>s: ids, attention mask (1 = real token) and labels
/// (−100 on padding) as int32 [batch, longest].
/// </summary>
internal sealed class CausalLmBatch
{
    private CausalLmBatch(Tensor inputIds, Tensor attentionMask, Tensor labels, int supervisedTokens)
    {
        InputIds = inputIds;
        AttentionMask = attentionMask;
        Labels = labels;
        SupervisedTokens = supervisedTokens;
    }

    public Tensor InputIds { get; }

    public Tensor AttentionMask { get; }

    public Tensor Labels { get; }

    /// <summary>Labels counted by the loss (shifted labels that are not −100).</summary>
    public int SupervisedTokens { get; }

    /// <summary>Collates the sequences at <paramref name="rows"/> (tensors belong to the current scope).</summary>
    public static CausalLmBatch Collate(IReadOnlyList<CausalLmSequence> sequences, IReadOnlyList<int> rows, int paddingId)
    {
        int width = 0;
        foreach (int r in rows) width = Math.Max(width, sequences[r].Length);
        var ids = new int[rows.Count * width];
        var mask = new int[ids.Length];
        var labels = new int[ids.Length];
        Array.Fill(ids, paddingId);
        Array.Fill(labels, InstructionEncoder.IgnoreIndex);
        int supervised = 0;
        for (int b = 0; b < rows.Count; b++)
        {
            var s = sequences[rows[b]];
            s.InputIds.CopyTo(ids, b * width);
            s.Labels.CopyTo(labels, b * width);
            mask.AsSpan(b * width, s.Length).Fill(1);
            supervised += s.SupervisedTokens;
        }
        return new CausalLmBatch(Tensor.FromInt32(ids, rows.Count, width), Tensor.FromInt32(mask, rows.Count, width), Tensor.FromInt32(labels, rows.Count, width), supervised);
    }
}
