using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A decoder with a per-token classifier: HF <c>LlamaForTokenClassification</c>, <c>MistralForTokenClassification</c>,
/// <c>Qwen2ForTokenClassification</c> (head <c>score</c>), <c>GPT2ForTokenClassification</c> and
/// <c>GPTNeoXForTokenClassification</c> (head <c>classifier</c>). Logits [batch, seq, num_labels] =
/// head(dropout(h)) with a biased Linear head, at every position.
/// </summary>
/// <remarks>
/// The decoder is causal, so a token's logits see only the tokens to its left. Under left padding, padding positions
/// see no key and their hidden state is zero (see the models README), so their logits equal the head's bias; only
/// real-token positions are meaningful, as in transformers.
/// </remarks>
public sealed class DecoderForTokenClassification : TokenClassificationModel
{
    private readonly string[] heads;
    private readonly ModuleSlot<DecoderModel> decoder;
    private readonly ModuleSlot<Dropout> dropout;
    private readonly ModuleSlot<LinearLayer> head;

    /// <param name="config">The model's config (NumLabels from it).</param>
    /// <param name="decoder">The backbone, registered under <paramref name="backbonePrefix"/>.</param>
    /// <param name="backbonePrefix"><c>model</c>, <c>transformer</c> or <c>gpt_neox</c>.</param>
    /// <param name="headName">The checkpoint name of the per-token Linear: <c>score</c> or <c>classifier</c>.</param>
    /// <param name="dropoutProbability">Dropout before the head (training mode only).</param>
    /// <param name="dropoutGenerator">Source of the dropout masks.</param>
    internal DecoderForTokenClassification(ModelConfig config, DecoderModel decoder, string backbonePrefix, string headName,
        float dropoutProbability, Generator dropoutGenerator)
        : base(config, backbonePrefix)
    {
        heads = [headName];
        this.decoder = RegisterModule(backbonePrefix, decoder);
        dropout = RegisterModule("dropout", new Dropout(dropoutProbability, dropoutGenerator));
        head = RegisterModule<LinearLayer>(headName, Placeholder.Linear(config.HiddenSize, config.NumLabels, bias: true));
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadModuleNames => heads;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => false;

    /// <summary>The backbone.</summary>
    public DecoderModel Decoder => decoder.Module;

    /// <summary>
    /// Logits [batch, seq, num_labels]; <paramref name="tokenTypeIds"/> is ignored (decoders have no segments) and
    /// position ids default to 0..seq−1 for every row, as in transformers (see <see cref="DecoderModel.Forward"/>).
    /// The positions of an input prompt's virtual tokens are dropped, so the logits line up with the labels.
    /// </summary>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null) =>
        head.Module.Forward(dropout.Module.Forward(PromptPlumbing.DropVirtualTokens(decoder.Module.Forward(inputIds, attentionMask, positionIds), inputIds.Size(1))));
}
