using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// An encoder with a per-token classifier (HF <c>BertForTokenClassification</c>, <c>RobertaForTokenClassification</c>,
/// <c>DistilBertForTokenClassification</c>): logits [batch, seq, num_labels] = classifier(dropout(h)).
/// </summary>
public sealed class EncoderForTokenClassification : TokenClassificationModel
{
    private static readonly string[] Heads = ["classifier"];
    private readonly ModuleSlot<EncoderModel> encoder;
    private readonly ModuleSlot<Dropout> dropout;
    private readonly ModuleSlot<LinearLayer> classifier;

    internal EncoderForTokenClassification(ModelConfig config, EncoderModel encoder, string backbonePrefix, float dropoutProbability, Generator dropoutGenerator)
        : base(config, backbonePrefix)
    {
        this.encoder = RegisterModule(backbonePrefix, encoder);
        dropout = RegisterModule("dropout", new Dropout(dropoutProbability, dropoutGenerator));
        classifier = RegisterModule<LinearLayer>("classifier", Placeholder.Linear(config.HiddenSize, config.NumLabels, bias: true));
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadModuleNames => Heads;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => encoder.Module.UsesTokenTypeIds;

    /// <summary>The backbone.</summary>
    public EncoderModel Encoder => encoder.Module;

    /// <summary>
    /// Logits [batch, seq, num_labels] for int32 ids [batch, seq] (see <see cref="EncoderModel.Forward"/>); the positions
    /// of an input prompt's virtual tokens are dropped, so the logits line up with the labels.
    /// </summary>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null) =>
        classifier.Module.Forward(dropout.Module.Forward(PromptPlumbing.DropVirtualTokens(encoder.Module.Forward(inputIds, attentionMask, tokenTypeIds, positionIds), inputIds.Size(1))));
}
