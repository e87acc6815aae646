using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A transformer with a sequence-classification head (HF <c>*ForSequenceClassification</c>): token ids → logits
/// [batch, num_labels]. Encoders read the first ([CLS]) token; decoders read the last non-padding token. This is the
/// surface the text-classification trainer drives.
/// </summary>
public abstract class SequenceClassificationModel : PretrainedModel
{
    private protected SequenceClassificationModel(ModelConfig config, string backbonePrefix)
        : base(config, backbonePrefix)
    {
    }

    /// <inheritdoc/>
    public override ModelTask Task => ModelTask.SequenceClassification;

    /// <summary>Number of classes (columns of the logits).</summary>
    public int NumLabels => Config.NumLabels;

    /// <summary>Whether token type (segment) ids affect the output; when false they may be passed as null.</summary>
    public abstract bool UsesTokenTypeIds { get; }

    /// <summary>The head modules a PEFT method should keep trainable (<c>modules_to_save</c>), e.g. ["classifier"] or ["score"].</summary>
    public IReadOnlyList<string> ClassifierHeadNames => HeadModuleNames;

    /// <summary>
    /// Logits [batch, num_labels] for int32 ids [batch, seq]. <paramref name="attentionMask"/>: 1 = real token,
    /// 0 = padding (left or right); null = no padding. <paramref name="positionIds"/>: null = the model's default.
    /// </summary>
    public abstract Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null);

    /// <summary>
    /// Logits [batch, num_labels] for row-major [batch, seq] arrays, as a tokenizer's batch encoding produces them.
    /// <paramref name="tokenTypeIds"/> may be null (all segment 0).
    /// </summary>
    public Tensor Forward(int[] inputIds, int[] attentionMask, int[]? tokenTypeIds, int batch, int seq)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(seq);
        CheckLength(inputIds, nameof(inputIds), batch, seq);
        CheckLength(attentionMask, nameof(attentionMask), batch, seq);
        if (tokenTypeIds is not null) CheckLength(tokenTypeIds, nameof(tokenTypeIds), batch, seq);
        return Forward(
            Tensor.FromInt32(inputIds, batch, seq),
            Tensor.FromInt32(attentionMask, batch, seq),
            tokenTypeIds is null || !UsesTokenTypeIds ? null : Tensor.FromInt32(tokenTypeIds, batch, seq));
    }

    private static void CheckLength(int[] values, string name, int batch, int seq)
    {
        if (values.Length != batch * seq)
            throw new ArgumentException($"{name} has {values.Length} values but batch {batch} × seq {seq} = {batch * seq}", name);
    }
}
