namespace Microsoft.ML.Peft.Training;

/// <summary>How training rows are grouped into batches each epoch.</summary>
public enum BatchOrder
{
    /// <summary>A fresh seeded permutation of all rows every epoch, cut into consecutive batches.</summary>
    Shuffled,

    /// <summary>
    /// Like Hugging Face's <c>group_by_length</c>: a seeded permutation is cut into mega-batches of 50 batches, each
    /// mega-batch is sorted by token count (longest first) and cut into batches, and the batch order is shuffled again.
    /// Rows of similar length share a batch, so less compute goes into padding.
    /// </summary>
    LengthGrouped,
}
