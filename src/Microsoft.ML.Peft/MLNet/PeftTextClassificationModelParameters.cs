namespace Microsoft.ML.Peft;

/// <summary>
/// The model of a <see cref="PeftTextClassificationTransformer"/> (its <c>IPredictionTransformer.Model</c>): which PEFT
/// method was trained on which base model, for which classes. The weights themselves stay in the transformer; export
/// them with <see cref="SaveAdapter"/>.
/// </summary>
public sealed class PeftTextClassificationModelParameters
{
    private readonly ITextClassifierBackend backend;

    internal PeftTextClassificationModelParameters(ITextClassifierBackend backend, int numberOfClasses, KeyValuesAnnotation? labelKeyValues)
    {
        this.backend = backend;
        NumberOfClasses = numberOfClasses;
        ClassNames = labelKeyValues?.Names;
    }

    /// <summary>The adapter's peft_type ("LORA", "IA3", "BITFIT", "FULL_FINETUNING", ...).</summary>
    public string PeftType => backend.PeftType;

    /// <summary>The base model's folder or hub id.</summary>
    public string BaseModel => backend.BaseModel.NameOrPath;

    /// <summary>SHA-256 (hex) of each of the base model's weights files, by file name; checked when a saved pipeline is loaded again.</summary>
    public IReadOnlyDictionary<string, string> BaseModelWeightsSha256 => backend.BaseModel.WeightsSha256;

    /// <summary>Number of classes (2 for binary).</summary>
    public int NumberOfClasses { get; }

    /// <summary>The label's key values as text, in class-index order (null for binary or a label without key values).</summary>
    public IReadOnlyList<string>? ClassNames { get; }

    /// <summary>Writes the adapter (and classification head) in Hugging Face PEFT format: adapter_config.json and adapter_model.safetensors.</summary>
    public void SaveAdapter(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        backend.SaveAdapter(folder);
    }
}
