using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.DistilBert;

/// <summary>HF <c>DistilBertForSequenceClassification</c>: classifier(dropout(relu(pre_classifier(h[:, 0])))).</summary>
public sealed class DistilBertForSequenceClassification : SequenceClassificationModel
{
    private static readonly string[] Heads = ["pre_classifier", "classifier"];
    private readonly ModuleSlot<DistilBertModel> distilbert;
    private readonly ModuleSlot<LinearLayer> preClassifier;
    private readonly ModuleSlot<LinearLayer> classifier;
    private readonly ModuleSlot<Dropout> dropout;

    internal DistilBertForSequenceClassification(DistilBertConfig config, Generator dropoutGenerator)
        : base(config, "distilbert")
    {
        distilbert = RegisterModule("distilbert", new DistilBertModel(config, dropoutGenerator));
        preClassifier = RegisterModule<LinearLayer>("pre_classifier", Placeholder.Linear(config.Dim, config.Dim, bias: true));
        classifier = RegisterModule<LinearLayer>("classifier", Placeholder.Linear(config.Dim, config.NumLabels, bias: true));
        dropout = RegisterModule("dropout", new Dropout((float)config.SeqClassifDropout, dropoutGenerator));
    }

    /// <summary>The backbone.</summary>
    public DistilBertModel DistilBert => distilbert.Module;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => false;

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadModuleNames => Heads;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null)
    {
        var hidden = distilbert.Module.Forward(inputIds, attentionMask, tokenTypeIds, positionIds);
        var pooled = preClassifier.Module.Forward(hidden.Select(1, 0)).Relu();
        return classifier.Module.Forward(dropout.Module.Forward(pooled));
    }
}
