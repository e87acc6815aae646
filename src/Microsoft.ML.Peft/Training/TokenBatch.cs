namespace Microsoft.ML.Peft.Training;

/// <summary>
/// A right-padded [batch, sequence] block of model inputs (row-major), the shape every sequence classifier reads.
/// Padding positions carry <see cref="PaddingId"/> in <see cref="InputIds"/> and 0 in <see cref="AttentionMask"/>;
/// <see cref="Lengths"/> gives each row's real token count, so decoders can pool the last real token.
/// </summary>
internal sealed class TokenBatch
{
    private TokenBatch(int batchSize, int sequenceLength, int paddingId, int[] inputIds, int[] attentionMask, int[]? tokenTypeIds, int[] lengths)
    {
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        PaddingId = paddingId;
        InputIds = inputIds;
        AttentionMask = attentionMask;
        TokenTypeIds = tokenTypeIds;
        Lengths = lengths;
    }

    /// <summary>Rows.</summary>
    public int BatchSize { get; }

    /// <summary>Columns: the longest row of the batch.</summary>
    public int SequenceLength { get; }

    /// <summary>The id written into padding positions.</summary>
    public int PaddingId { get; }

    /// <summary>Token ids [batch·sequence].</summary>
    public int[] InputIds { get; }

    /// <summary>1 for real tokens, 0 for padding [batch·sequence].</summary>
    public int[] AttentionMask { get; }

    /// <summary>Segment ids [batch·sequence] (0 for padding), or null when no example has any.</summary>
    public int[]? TokenTypeIds { get; }

    /// <summary>Real tokens per row.</summary>
    public int[] Lengths { get; }

    /// <summary>Pads the token lists of <paramref name="rows"/> to the longest one (at least one token each).</summary>
    public static TokenBatch Collate(IReadOnlyList<int[]> rows, IReadOnlyList<int[]?>? typeRows, int paddingId)
    {
        ArgumentNullException.ThrowIfNull(rows);
        if (rows.Count == 0) throw new ArgumentException("a batch needs at least one row", nameof(rows));
        int longest = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i].Length == 0) throw new ArgumentException($"row {i} of the batch has no tokens", nameof(rows));
            longest = Math.Max(longest, rows[i].Length);
        }
        bool hasTypes = typeRows is not null && typeRows.Any(t => t is not null);
        int total = checked(rows.Count * longest);
        var ids = new int[total];
        var mask = new int[total];
        var types = hasTypes ? new int[total] : null;
        var lengths = new int[rows.Count];
        Array.Fill(ids, paddingId);
        for (int i = 0; i < rows.Count; i++)
        {
            var row = rows[i];
            row.CopyTo(ids, i * longest);
            mask.AsSpan(i * longest, row.Length).Fill(1);
            if (types is not null && typeRows![i] is { } t) t.CopyTo(types, i * longest);
            lengths[i] = row.Length;
        }
        return new TokenBatch(rows.Count, longest, paddingId, ids, mask, types, lengths);
    }

    /// <summary>Collates the examples at <paramref name="indices"/> of <paramref name="examples"/>.</summary>
    public static TokenBatch Collate(IReadOnlyList<ClassificationExample> examples, ReadOnlySpan<int> indices, int paddingId)
    {
        var rows = new int[indices.Length][];
        var types = new int[]?[indices.Length];
        for (int i = 0; i < indices.Length; i++)
        {
            rows[i] = examples[indices[i]].TokenIds;
            types[i] = examples[indices[i]].TokenTypeIds;
        }
        return Collate(rows, types, paddingId);
    }
}
