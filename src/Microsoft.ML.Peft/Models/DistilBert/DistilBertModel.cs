using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.DistilBert;

/// <summary>
/// HF <c>DistilBertModel</c>: embeddings (word + learned position, LayerNorm, dropout; no token types) →
/// transformer.layer.N. Each block is post-LayerNorm like BERT with DistilBERT's names: attention.{q,k,v,out}_lin,
/// sa_layer_norm, ffn.{lin1,lin2}, output_layer_norm.
/// </summary>
public sealed class DistilBertModel : EncoderModel
{
    private readonly ModuleSlot<DistilBertEmbeddings> embeddings;
    private readonly ModuleSlot<DistilBertTransformer> transformer;
    private readonly DistilBertConfig config;

    /// <summary>A backbone for <paramref name="config"/> (placeholders until weights are bound).</summary>
    public DistilBertModel(DistilBertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        this.config = config;
        embeddings = RegisterModule("embeddings", new DistilBertEmbeddings(config, dropoutGenerator));
        transformer = RegisterModule("transformer", new DistilBertTransformer(config, dropoutGenerator));
    }

    /// <inheritdoc/>
    public override int HiddenSize => config.Dim;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => false;

    /// <summary>The blocks.</summary>
    public ModuleList<DistilBertBlock> Layers => transformer.Module.Layers;

    /// <inheritdoc/>
    public override PromptGeometry PromptGeometry =>
        new(GetType().Name, config.Dim, config.NLayers, config.NHeads, config.NHeads, config.HeadDim, config.MaxPositionEmbeddings, IsDecoder: false);

    /// <inheritdoc/>
    public override Tensor InputEmbeddingWeight => embeddings.Module.WordEmbeddings.Weight;

    /// <inheritdoc/>
    public override Tensor Embed(Tensor inputIds)
    {
        AttentionHelpers.CheckIds(inputIds);
        return embeddings.Module.WordEmbeddings.Forward(inputIds.IsContiguous ? inputIds : inputIds.Contiguous());
    }

    /// <inheritdoc/>
    /// <remarks>
    /// DistilBERT has no past_key_values in transformers, so a key/value prefix does not shift the real tokens'
    /// positions here (they stay 0..seq−1); an input prompt takes positions 0..n−1 as with BERT.
    /// </remarks>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null,
        IList<Tensor>? hiddenStates = null)
    {
        var (b, t) = AttentionHelpers.CheckIds(inputIds);
        attentionMask = AttentionHelpers.CheckCompanion(attentionMask, "attention_mask", b, t);
        positionIds = AttentionHelpers.CheckCompanion(positionIds, "position_ids", b, t);
        if (PromptSource is { } prompt && prompt.InputPromptLength + prompt.PrefixLength > 0)
            return ForwardPrompted(prompt, Embed(inputIds), attentionMask, positionIds, hiddenStates);
        return Encode(embeddings.Module.Forward(inputIds, positionIds), attentionMask, null, hiddenStates);
    }

    /// <inheritdoc/>
    public override Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputsEmbeds);
        if (inputsEmbeds.Rank != 3 || inputsEmbeds.Size(2) != config.Dim)
            throw new ArgumentException($"inputs_embeds {inputsEmbeds} must be [batch, seq, {config.Dim}]");
        attentionMask = AttentionHelpers.CheckCompanion(attentionMask, "attention_mask", inputsEmbeds.Size(0), inputsEmbeds.Size(1));
        return ForwardPrompted(PromptSource, inputsEmbeds, attentionMask, null, null);
    }

    private Tensor ForwardPrompted(IPromptSource? prompt, Tensor words, Tensor? attentionMask, Tensor? positionIds, IList<Tensor>? hiddenStates)
    {
        int virtualTokens = prompt?.InputPromptLength ?? 0, prefix = prompt?.PrefixLength ?? 0;
        if (virtualTokens > 0)
        {
            if (positionIds is not null)
                throw new ArgumentException($"position_ids cannot be given with an input prompt of {virtualTokens} virtual tokens");
            words = PromptPlumbing.PrependPrompt(prompt!.InputPrompt(), words);
        }
        attentionMask = PromptPlumbing.PrependOnes(attentionMask, virtualTokens + prefix);
        var x = embeddings.Module.ForwardWords(words, positionIds);
        return Encode(x, attentionMask, prefix > 0 ? prompt!.PrefixKeyValues() : null, hiddenStates);
    }

    private Tensor Encode(Tensor x, Tensor? attentionMask, Tensor? prefixKeyValues, IList<Tensor>? hiddenStates)
    {
        hiddenStates?.Add(x);
        var keyMask = AttentionHelpers.AdditiveKeyMask(attentionMask);
        var residual = BeginResidualStream(attentionMask, x.Size(0), x.Size(1));
        var layers = transformer.Module.Layers;
        for (int i = 0; i < layers.Count; i++)
        {
            x = AfterBlock(i, layers[i].Forward(x, keyMask, prefixKeyValues, i), residual);
            hiddenStates?.Add(x);
        }
        return x;
    }
}

/// <summary>HF DistilBERT <c>Embeddings</c>: LayerNorm(word[ids] + position[0..T−1]), dropout.</summary>
public sealed class DistilBertEmbeddings : Module
{
    private readonly ModuleSlot<Embedding> wordEmbeddings;
    private readonly ModuleSlot<Embedding> positionEmbeddings;
    private readonly ModuleSlot<LayerNorm> layerNorm;
    private readonly ModuleSlot<Dropout> dropout;

    /// <summary>Creates the embeddings.</summary>
    public DistilBertEmbeddings(DistilBertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        wordEmbeddings = RegisterModule("word_embeddings", Placeholder.Embedding(config.VocabSize, config.Dim, config.PadTokenId));
        positionEmbeddings = RegisterModule("position_embeddings", Placeholder.Embedding(config.MaxPositionEmbeddings, config.Dim));
        layerNorm = RegisterModule("LayerNorm", new LayerNorm(config.Dim, 1e-12f));
        dropout = RegisterModule("dropout", new Dropout((float)config.Dropout, dropoutGenerator));
    }

    /// <summary>The token embedding table.</summary>
    public Embedding WordEmbeddings => wordEmbeddings.Module;

    /// <summary>int32 ids [B, T] → [B, T, dim].</summary>
    public Tensor Forward(Tensor inputIds, Tensor? positionIds) => ForwardWords(wordEmbeddings.Module.Forward(inputIds), positionIds);

    /// <summary>Word embeddings [B, T, dim] → LayerNorm(words + position[pos]) with dropout; null positions = 0..T−1.</summary>
    internal Tensor ForwardWords(Tensor x, Tensor? positionIds)
    {
        int seq = x.Size(1), max = positionEmbeddings.Module.Weight.Size(0);
        if (positionIds is null && seq > max) throw new ArgumentException($"sequence length {seq} exceeds max_position_embeddings = {max}");
        x = x.Add(positionIds is null ? Bert.BertEmbeddings.LeadingRows(positionEmbeddings.Module, seq) : positionEmbeddings.Module.Forward(positionIds));
        return dropout.Module.Forward(layerNorm.Module.Forward(x));
    }
}

/// <summary>HF DistilBERT <c>Transformer</c>: the list <c>layer</c> of blocks.</summary>
public sealed class DistilBertTransformer : Module
{
    private readonly ModuleSlot<ModuleList<DistilBertBlock>> layer;

    /// <summary>n_layers blocks.</summary>
    public DistilBertTransformer(DistilBertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        layer = RegisterModule("layer", new ModuleList<DistilBertBlock>(Enumerable.Range(0, config.NLayers).Select(_ => new DistilBertBlock(config, dropoutGenerator))));
    }

    /// <summary>The blocks, in order.</summary>
    public ModuleList<DistilBertBlock> Layers => layer.Module;
}

/// <summary>
/// HF DistilBERT <c>TransformerBlock</c>: a = sa_layer_norm(out_lin(attn(x)) + x);
/// out = output_layer_norm(dropout(lin2(act(lin1(a)))) + a).
/// </summary>
public sealed class DistilBertBlock : Module
{
    private readonly ModuleSlot<DistilBertAttention> attention;
    private readonly ModuleSlot<LayerNorm> saLayerNorm;
    private readonly ModuleSlot<DistilBertFeedForward> ffn;
    private readonly ModuleSlot<LayerNorm> outputLayerNorm;

    /// <summary>Creates a block.</summary>
    public DistilBertBlock(DistilBertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        attention = RegisterModule("attention", new DistilBertAttention(config, dropoutGenerator));
        saLayerNorm = RegisterModule("sa_layer_norm", new LayerNorm(config.Dim, 1e-12f));
        ffn = RegisterModule("ffn", new DistilBertFeedForward(config, dropoutGenerator));
        outputLayerNorm = RegisterModule("output_layer_norm", new LayerNorm(config.Dim, 1e-12f));
    }

    /// <summary>[B, T, dim] → [B, T, dim].</summary>
    public Tensor Forward(Tensor hidden, Tensor? keyMask) => Forward(hidden, keyMask, null, 0);

    /// <summary>The block with layer <paramref name="layer"/>'s key/value prefix (prefix tuning) in front of its own keys/values.</summary>
    internal Tensor Forward(Tensor hidden, Tensor? keyMask, Tensor? prefixKeyValues, int layer)
    {
        var a = saLayerNorm.Module.Forward(attention.Module.Forward(hidden, keyMask, prefixKeyValues, layer).Add(hidden));
        return outputLayerNorm.Module.Forward(ffn.Module.Forward(a).Add(a));
    }
}

/// <summary>
/// HF DistilBERT <c>MultiHeadSelfAttention</c>: q_lin, k_lin, v_lin, softmax(QKᵀ/√d + mask)·V with attention_dropout
/// on the probabilities in training mode (fused attention), out_lin.
/// </summary>
public sealed class DistilBertAttention : Module
{
    private readonly ModuleSlot<LinearLayer> qLin;
    private readonly ModuleSlot<LinearLayer> kLin;
    private readonly ModuleSlot<LinearLayer> vLin;
    private readonly ModuleSlot<LinearLayer> outLin;
    private readonly int heads;
    private readonly int headDim;
    private readonly float dropout;
    private readonly Generator dropoutGenerator;

    /// <summary>Creates the projections.</summary>
    public DistilBertAttention(DistilBertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dropoutGenerator);
        this.dropoutGenerator = dropoutGenerator;
        dropout = (float)config.AttentionDropout;
        heads = config.NHeads;
        headDim = config.HeadDim;
        int d = config.Dim;
        qLin = RegisterModule<LinearLayer>("q_lin", Placeholder.Linear(d, d, bias: true));
        kLin = RegisterModule<LinearLayer>("k_lin", Placeholder.Linear(d, d, bias: true));
        vLin = RegisterModule<LinearLayer>("v_lin", Placeholder.Linear(d, d, bias: true));
        outLin = RegisterModule<LinearLayer>("out_lin", Placeholder.Linear(d, d, bias: true));
    }

    /// <summary>out_lin(attention(x)) [B, T, dim].</summary>
    public Tensor Forward(Tensor hidden, Tensor? keyMask) => Forward(hidden, keyMask, null, 0);

    internal Tensor Forward(Tensor hidden, Tensor? keyMask, Tensor? prefixKeyValues, int layer)
    {
        var q = AttentionHelpers.SplitHeads(qLin.Module.Forward(hidden), heads, headDim);
        var k = AttentionHelpers.SplitHeads(kLin.Module.Forward(hidden), heads, headDim);
        var v = AttentionHelpers.SplitHeads(vLin.Module.Forward(hidden), heads, headDim);
        (k, v) = PromptPlumbing.WithPrefix(prefixKeyValues, layer, k, v);
        return outLin.Module.Forward(AttentionHelpers.MergeHeads(q.ScaledDotProductAttention(k, v, keyMask, dropout: IsTraining ? dropout : 0f, generator: dropoutGenerator)));
    }
}

/// <summary>HF DistilBERT <c>FFN</c>: dropout(lin2(act(lin1(x)))).</summary>
public sealed class DistilBertFeedForward : Module
{
    private readonly ModuleSlot<LinearLayer> lin1;
    private readonly ModuleSlot<LinearLayer> lin2;
    private readonly ModuleSlot<Dropout> dropout;
    private readonly ActivationKind activation;

    /// <summary>Creates the feed-forward layer.</summary>
    public DistilBertFeedForward(DistilBertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        activation = Activation.Parse(config.Activation, config, "activation");
        lin1 = RegisterModule<LinearLayer>("lin1", Placeholder.Linear(config.Dim, config.HiddenDim, bias: true));
        lin2 = RegisterModule<LinearLayer>("lin2", Placeholder.Linear(config.HiddenDim, config.Dim, bias: true));
        dropout = RegisterModule("dropout", new Dropout((float)config.Dropout, dropoutGenerator));
    }

    /// <summary>dropout(lin2(act(lin1(x)))).</summary>
    public Tensor Forward(Tensor hidden) => dropout.Module.Forward(lin2.Module.Forward(activation.Apply(lin1.Module.Forward(hidden))));
}
