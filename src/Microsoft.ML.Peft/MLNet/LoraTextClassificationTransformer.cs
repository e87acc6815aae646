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
}
