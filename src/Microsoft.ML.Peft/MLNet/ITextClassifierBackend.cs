using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft;

/// <summary>
/// A pretrained sequence classifier with a PEFT adapter, ready to train or score: the model, its tokenizer and padding
/// id, where the base weights came from, and how to write the adapter in Hugging Face PEFT's layout.
/// </summary>
internal interface ITextClassifierBackend : ISequenceClassifier
{
    Tokenizer Tokenizer { get; }

    /// <summary>The id written into padding positions (the tokenizer's pad token, else EOS/UNK as transformers users do).</summary>
    int PaddingId { get; }

    /// <summary>Whether the model reads token type ids.</summary>
    bool UsesTokenTypeIds { get; }

    /// <summary>The adapter's peft_type ("LORA", "IA3", "BITFIT", ...).</summary>
    string PeftType { get; }

    /// <summary>The base model this adapter belongs to.</summary>
    BaseModelReference BaseModel { get; }

    /// <summary>Writes <c>adapter_config.json</c> and <c>adapter_model.safetensors</c> (head included as modules_to_save).</summary>
    void SaveAdapter(string folder);
}

/// <summary>Builds <see cref="ITextClassifierBackend"/>s: fresh for training, or from a saved adapter for scoring.</summary>
internal interface ITextClassifierFactory
{
    /// <summary>Loads the base model with a new <paramref name="numLabels"/>-way head and injects the options' PEFT method.</summary>
    ITextClassifierBackend Create(TextClassificationTrainerOptions options, int numLabels);

    /// <summary>Loads the base model and the adapter saved in <paramref name="adapterFolder"/> (frozen, evaluation mode).</summary>
    ITextClassifierBackend Load(BaseModelReference baseModel, string adapterFolder, int numLabels, Action<string>? log);
}
