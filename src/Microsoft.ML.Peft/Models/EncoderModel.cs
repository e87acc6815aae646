using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>A bidirectional transformer backbone (BERT, RoBERTa, DistilBERT): token ids → hidden states [batch, seq, hidden].</summary>
public abstract class EncoderModel : Module
{
    /// <summary>Width of the hidden states.</summary>
    public abstract int HiddenSize { get; }

    /// <summary>Whether <c>token_type_ids</c> (segment ids) change the output (BERT: yes; RoBERTa has one type; DistilBERT none).</summary>
    public abstract bool UsesTokenTypeIds { get; }

    /// <summary>
    /// The last hidden state [batch, seq, hidden]. All id tensors are int32 [batch, seq]; <paramref name="attentionMask"/>
    /// is 1 for real tokens and 0 for padding (null = no padding); <paramref name="positionIds"/> null = the model's
    /// own rule (0..seq−1, or RoBERTa's padding-aware positions). When <paramref name="hiddenStates"/> is given, the
    /// embedding output and each layer's output are appended to it (transformers' <c>output_hidden_states</c>).
    /// </summary>
    public abstract Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null,
        IList<Tensor>? hiddenStates = null);
}
