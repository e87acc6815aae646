namespace Microsoft.ML.Peft;

/// <summary>Builds backends from pretrained models (PretrainedModel) and LoRA (PeftModel).</summary>
internal sealed class PeftTextClassifierFactory : ITextClassifierFactory
{
    public static PeftTextClassifierFactory Instance { get; } = new();

    public ITextClassifierBackend Create(LoraTextClassificationTrainer.Options options, int numLabels) =>
        throw new NotSupportedException("WIP: waiting for Models/ and Lora/ on main");

    public ITextClassifierBackend Load(BaseModelReference baseModel, string adapterFolder, int numLabels, Action<string>? log) =>
        throw new NotSupportedException("WIP: waiting for Models/ and Lora/ on main");
}
