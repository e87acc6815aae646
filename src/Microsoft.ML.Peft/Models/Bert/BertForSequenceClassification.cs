using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Bert;

/// <summary>HF <c>BertForSequenceClassification</c>: classifier(dropout(tanh(bert.pooler.dense(h[:, 0])))).</summary>
public sealed class BertForSequenceClassification : SequenceClassificationModel
{
    private static readonly string[] Heads = ["classifier"];
    private static readonly string[] Initializable = ["classifier", "bert.pooler"];
    private readonly ModuleSlot<BertModel> bert;
    private readonly ModuleSlot<Dropout> dropout;
    private readonly ModuleSlot<LinearLayer> classifier;

    internal BertForSequenceClassification(BertConfig config, Generator dropoutGenerator)
        : base(config, "bert")
    {
        bert = RegisterModule("bert", new BertModel(config, dropoutGenerator, addPoolingLayer: true));
        dropout = RegisterModule("dropout", new Dropout((float)(config.ClassifierDropout ?? config.HiddenDropoutProb), dropoutGenerator));
        classifier = RegisterModule<LinearLayer>("classifier", Placeholder.Linear(config.HiddenSize, config.NumLabels, bias: true));
    }

    /// <summary>The backbone.</summary>
    public BertModel Bert => bert.Module;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => bert.Module.UsesTokenTypeIds;

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadModuleNames => Heads;

    /// <summary>The pooler is part of the pretrained backbone, but transformers initialises it when a checkpoint lacks it.</summary>
    internal override IReadOnlyList<string> InitializableModuleNames => Initializable;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null)
    {
        var hidden = bert.Module.Forward(inputIds, attentionMask, tokenTypeIds, positionIds);
        return classifier.Module.Forward(dropout.Module.Forward(bert.Module.Pool(hidden)));
    }
}

/// <summary>HF <c>RobertaForSequenceClassification</c>: classifier.out_proj(dropout(tanh(classifier.dense(dropout(h[:, 0]))))).</summary>
public sealed class RobertaForSequenceClassification : SequenceClassificationModel
{
    private static readonly string[] Heads = ["classifier"];
    private readonly ModuleSlot<BertModel> roberta;
    private readonly ModuleSlot<RobertaClassificationHead> classifier;

    internal RobertaForSequenceClassification(RobertaConfig config, Generator dropoutGenerator)
        : base(config, "roberta")
    {
        roberta = RegisterModule("roberta", new BertModel(config, dropoutGenerator, addPoolingLayer: false));
        classifier = RegisterModule("classifier", new RobertaClassificationHead(config, dropoutGenerator));
    }

    /// <summary>The backbone.</summary>
    public BertModel Roberta => roberta.Module;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => roberta.Module.UsesTokenTypeIds;

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadModuleNames => Heads;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null) =>
        classifier.Module.Forward(roberta.Module.Forward(inputIds, attentionMask, tokenTypeIds, positionIds));
}

/// <summary>HF <c>RobertaClassificationHead</c>: <c>dense</c> + tanh + <c>out_proj</c> on the first token, with dropout around dense.</summary>
public sealed class RobertaClassificationHead : Module
{
    private readonly ModuleSlot<LinearLayer> dense;
    private readonly ModuleSlot<Dropout> dropout;
    private readonly ModuleSlot<LinearLayer> outProj;

    /// <summary>Creates the head.</summary>
    public RobertaClassificationHead(BertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        dense = RegisterModule<LinearLayer>("dense", Placeholder.Linear(config.HiddenSize, config.HiddenSize, bias: true));
        dropout = RegisterModule("dropout", new Dropout((float)(config.ClassifierDropout ?? config.HiddenDropoutProb), dropoutGenerator));
        outProj = RegisterModule<LinearLayer>("out_proj", Placeholder.Linear(config.HiddenSize, config.NumLabels, bias: true));
    }

    /// <summary>[B, T, H] → logits [B, num_labels].</summary>
    public Tensor Forward(Tensor lastHiddenState)
    {
        var x = dropout.Module.Forward(lastHiddenState.Select(1, 0));
        x = dropout.Module.Forward(dense.Module.Forward(x).Tanh());
        return outProj.Module.Forward(x);
    }
}
