namespace Microsoft.ML.Peft;

/// <summary>
/// A fine-tuned LoRA text classifier: what <see cref="LoraTextClassificationTrainer"/> returns, and what
/// <see cref="PeftModelPersistence"/> loads for a LoRA adapter. It is a <see cref="PeftTextClassificationTransformer"/>
/// under LoRA's name (kept because users know it); all behaviour lives in the base class.
/// </summary>
public sealed class LoraTextClassificationTransformer : PeftTextClassificationTransformer
{
    internal LoraTextClassificationTransformer(ClassifierParts parts)
        : base(parts)
    {
    }

    /// <summary>The constructor of the first release, kept for code in this assembly written against it.</summary>
    internal LoraTextClassificationTransformer(ITextClassifierBackend backend, TextClassificationColumns columns, int numLabels,
        KeyValuesAnnotation? labelKeyValues, TextEncoder encoder, int scoringBatchSize, IReadOnlyList<EpochSummary> history)
        : this(new ClassifierParts(backend, columns, numLabels, labelKeyValues, encoder, scoringBatchSize, history))
    {
    }
}
