namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// Optional sequence packing: concatenates whole training sequences, in order, into rows of at most
/// <c>rowLength</c> tokens so that batches carry (almost) no padding. A sequence never straddles two rows (a sequence
/// that does not fit starts a new row), and every sequence keeps its own labels, so the loss is unchanged in what it
/// supervises.
/// </summary>
/// <remarks>
/// <para>Attention is NOT confined to a sequence: as in transformers' <c>ConstantLengthDataset</c> (TRL's classic
/// <c>packing=True</c>), a token may attend to earlier sequences of its row, and positions run on through the row
/// (0 … rowLength − 1). Earlier sequences act as extra context; each one starts with its own prompt (and BOS), and the
/// label of a sequence's first token is −100 (it is a prompt token), so no loss crosses a boundary. Packing is
/// therefore a speed option that slightly changes what the model sees; it is off by default.</para>
/// </remarks>
public static class SequencePacker
{
    /// <summary>Packs <paramref name="sequences"/> greedily, in order, into rows of at most <paramref name="rowLength"/> tokens.</summary>
    /// <exception cref="ArgumentException">A sequence is longer than a row.</exception>
    public static IReadOnlyList<CausalLmSequence> Pack(IReadOnlyList<CausalLmSequence> sequences, int rowLength) =>
        Pack(sequences, rowLength, out _);

    /// <summary>As <see cref="Pack(IReadOnlyList{CausalLmSequence}, int)"/>; <paramref name="starts"/> receives each row's sequence start offsets.</summary>
    public static IReadOnlyList<CausalLmSequence> Pack(IReadOnlyList<CausalLmSequence> sequences, int rowLength, out IReadOnlyList<int[]> starts)
    {
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentOutOfRangeException.ThrowIfLessThan(rowLength, 1);
        var rows = new List<CausalLmSequence>();
        var rowStarts = new List<int[]>();
        var ids = new List<int>(rowLength);
        var labels = new List<int>(rowLength);
        var offsets = new List<int>();
        for (int s = 0; s < sequences.Count; s++)
        {
            var sequence = sequences[s];
            if (sequence.Length > rowLength)
                throw new ArgumentException($"sequence {s} has {sequence.Length} tokens, more than the packed row length {rowLength}", nameof(sequences));
            if (ids.Count + sequence.Length > rowLength) Flush();
            offsets.Add(ids.Count);
            ids.AddRange(sequence.InputIds);
            labels.AddRange(sequence.Labels);
        }
        Flush();
        starts = rowStarts;
        return rows;

        void Flush()
        {
            if (ids.Count == 0) return;
            rows.Add(new CausalLmSequence([.. ids], [.. labels]));
            rowStarts.Add([.. offsets]);
            ids.Clear();
            labels.Clear();
            offsets.Clear();
        }
    }
}
