using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A transformer with a per-token classifier (HF <c>*ForTokenClassification</c>): token ids → logits
/// [batch, seq, num_labels] = head(dropout(h)). Encoders (<see cref="EncoderForTokenClassification"/>) name the head
/// <c>classifier</c>; decoders (<see cref="DecoderForTokenClassification"/>) name it <c>score</c> (Llama, Mistral, Qwen2)
/// or <c>classifier</c> (GPT-2, GPT-NeoX).
/// </summary>
public abstract class TokenClassificationModel : PretrainedModel
{
    private protected TokenClassificationModel(ModelConfig config, string backbonePrefix)
        : base(config, backbonePrefix)
    {
    }

    /// <inheritdoc/>
    public override ModelTask Task => ModelTask.TokenClassification;

    /// <summary>Number of classes per token.</summary>
    public int NumLabels => Config.NumLabels;

    /// <summary>Whether token type (segment) ids affect the output; when false they may be passed as null.</summary>
    public abstract bool UsesTokenTypeIds { get; }

    /// <summary>
    /// Logits [batch, seq, num_labels] for int32 ids [batch, seq]. <paramref name="attentionMask"/>: 1 = real token,
    /// 0 = padding (left or right); null = no padding. Logits at padding positions are not meaningful.
    /// </summary>
    public abstract Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null);
}
