using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// What a model must offer so that prompt-learning methods can put learned vectors in front of its input (Hugging
/// Face's <c>inputs_embeds</c> path): the token-embedding lookup and a forward pass that starts from embeddings.
/// Implemented by the backbones (<see cref="DecoderModel"/>, <see cref="EncoderModel"/>) and the decoder
/// sequence-classification wrapper; prompt tuning's <c>PromptTuningModel</c> drives any <see cref="NN.Module"/> that
/// implements it.
/// </summary>
public interface IInputEmbeddingsModel
{
    /// <summary>The width of the input embeddings (hidden_size / token_dim).</summary>
    int HiddenSize { get; }

    /// <summary>The word-embedding table [vocab_size, hidden] (used to initialise prompts from text or vocabulary rows).</summary>
    Tensor InputEmbeddingWeight { get; }

    /// <summary>Word embeddings of int32 <paramref name="inputIds"/> [batch, seq] → [batch, seq, hidden] (no position embeddings).</summary>
    Tensor Embed(Tensor inputIds);

    /// <summary>
    /// The model's forward from word embeddings [batch, seq, hidden] (position, type embeddings and everything after
    /// are the model's business), with int32 <paramref name="attentionMask"/> [batch, seq] (1 = attend) or null.
    /// </summary>
    Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask);
}
