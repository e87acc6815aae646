namespace Microsoft.ML.Peft.Training;

/// <summary>
/// One tokenized training or validation row: the model input ids (special tokens included, already truncated), the
/// token type ids for sentence pairs (null when the model has none) and the 0-based class index.
/// </summary>
internal readonly record struct ClassificationExample(int[] TokenIds, int[]? TokenTypeIds, int Label)
{
    /// <summary>Number of tokens.</summary>
    public int Length => TokenIds.Length;
}
