namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>One encoded input (sequence or pair) ready for a model.</summary>
public sealed class TokenizedInput
{
    internal TokenizedInput(int[] inputIds, int[] attentionMask, int[] tokenTypeIds, int[] specialTokensMask)
    {
        InputIds = inputIds;
        AttentionMask = attentionMask;
        TokenTypeIds = tokenTypeIds;
        SpecialTokensMask = specialTokensMask;
    }

    /// <summary>Token ids, special tokens and padding included.</summary>
    public int[] InputIds { get; }

    /// <summary>1 for real tokens, 0 for padding.</summary>
    public int[] AttentionMask { get; }

    /// <summary>Segment ids (0 for the first sequence, 1 for the second in BERT).</summary>
    public int[] TokenTypeIds { get; }

    /// <summary>1 where a special token or padding sits, 0 for tokens of the text.</summary>
    public int[] SpecialTokensMask { get; }

    /// <summary>The number of positions (padding included).</summary>
    public int Length => InputIds.Length;
}

/// <summary>
/// A padded batch as row-major [BatchSize, SequenceLength] int arrays: element (b, t) is at b·SequenceLength + t.
/// </summary>
public sealed class TokenizedBatch
{
    internal TokenizedBatch(int batchSize, int sequenceLength, int[] inputIds, int[] attentionMask, int[] tokenTypeIds, int[] lengths)
    {
        BatchSize = batchSize;
        SequenceLength = sequenceLength;
        InputIds = inputIds;
        AttentionMask = attentionMask;
        TokenTypeIds = tokenTypeIds;
        Lengths = lengths;
    }

    /// <summary>Number of rows.</summary>
    public int BatchSize { get; }

    /// <summary>Number of positions per row.</summary>
    public int SequenceLength { get; }

    /// <summary>Token ids, [BatchSize × SequenceLength].</summary>
    public int[] InputIds { get; }

    /// <summary>1 for real tokens, 0 for padding, [BatchSize × SequenceLength].</summary>
    public int[] AttentionMask { get; }

    /// <summary>Token type (segment) ids, 0 on padding, [BatchSize × SequenceLength].</summary>
    public int[] TokenTypeIds { get; }

    /// <summary>Real (unpadded) length of each row.</summary>
    public int[] Lengths { get; }

    /// <summary>Row <paramref name="row"/> of <see cref="InputIds"/>.</summary>
    public ReadOnlySpan<int> InputIdsRow(int row) => InputIds.AsSpan(row * SequenceLength, SequenceLength);

    /// <summary>Row <paramref name="row"/> of <see cref="AttentionMask"/>.</summary>
    public ReadOnlySpan<int> AttentionMaskRow(int row) => AttentionMask.AsSpan(row * SequenceLength, SequenceLength);

    /// <summary>Row <paramref name="row"/> of <see cref="TokenTypeIds"/>.</summary>
    public ReadOnlySpan<int> TokenTypeIdsRow(int row) => TokenTypeIds.AsSpan(row * SequenceLength, SequenceLength);
}
