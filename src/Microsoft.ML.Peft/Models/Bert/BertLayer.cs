using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Bert;

/// <summary>
/// One post-LayerNorm BERT block (HF <c>BertLayer</c>): a = LN(x + dense(attn(x))); out = LN(a + dense(act(dense(a)))).
/// Module names follow the checkpoint: attention.self.{query,key,value}, attention.output.{dense,LayerNorm},
/// intermediate.dense, output.{dense,LayerNorm}.
/// </summary>
public sealed class BertLayer : Module
{
    private readonly ModuleSlot<BertAttention> attention;
    private readonly ModuleSlot<BertIntermediate> intermediate;
    private readonly ModuleSlot<BertProjectionOutput> output;

    /// <summary>A block for <paramref name="config"/> (placeholders until weights are bound).</summary>
    public BertLayer(BertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        attention = RegisterModule("attention", new BertAttention(config, dropoutGenerator));
        intermediate = RegisterModule("intermediate", new BertIntermediate(config));
        output = RegisterModule("output", new BertProjectionOutput(config, config.IntermediateSize, dropoutGenerator));
    }

    /// <summary>[B, T, H] → [B, T, H]; <paramref name="keyMask"/> is the additive [B, T] padding mask or null.</summary>
    public Tensor Forward(Tensor hidden, Tensor? keyMask) => Forward(hidden, keyMask, null, 0);

    /// <summary>As <see cref="Forward(Tensor, Tensor?)"/> with layer <paramref name="layer"/>'s key/value prefix from <paramref name="prefixKeyValues"/> (see <see cref="IPromptSource.PrefixKeyValues"/>); the mask then covers prefix + sequence.</summary>
    internal Tensor Forward(Tensor hidden, Tensor? keyMask, Tensor? prefixKeyValues, int layer)
    {
        var a = attention.Module.Forward(hidden, keyMask, prefixKeyValues, layer);
        return output.Module.Forward(intermediate.Module.Forward(a), a);
    }
}

/// <summary>HF <c>BertAttention</c>: <c>self</c> (the heads) then <c>output</c> (projection, residual, LayerNorm).</summary>
public sealed class BertAttention : Module
{
    private readonly ModuleSlot<BertSelfAttention> self;
    private readonly ModuleSlot<BertProjectionOutput> output;

    /// <summary>Creates the block's attention.</summary>
    public BertAttention(BertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        self = RegisterModule("self", new BertSelfAttention(config, dropoutGenerator));
        output = RegisterModule("output", new BertProjectionOutput(config, config.HiddenSize, dropoutGenerator));
    }

    /// <summary>LN(x + dense(attention(x))).</summary>
    public Tensor Forward(Tensor hidden, Tensor? keyMask) => Forward(hidden, keyMask, null, 0);

    internal Tensor Forward(Tensor hidden, Tensor? keyMask, Tensor? prefixKeyValues, int layer) =>
        output.Module.Forward(self.Module.Forward(hidden, keyMask, prefixKeyValues, layer), hidden);
}

/// <summary>
/// HF <c>BertSelfAttention</c>: query/key/value projections and softmax(QKᵀ/√d + mask)·V over all heads, computed by
/// the engine's fused attention on strided head views (no head transposition copies), with attention_probs_dropout_prob
/// dropout on the probabilities in training mode.
/// </summary>
public sealed class BertSelfAttention : Module
{
    private readonly ModuleSlot<LinearLayer> query;
    private readonly ModuleSlot<LinearLayer> key;
    private readonly ModuleSlot<LinearLayer> value;
    private readonly int heads;
    private readonly int headDim;
    private readonly float dropout;
    private readonly Generator dropoutGenerator;

    /// <summary>Creates the projections.</summary>
    public BertSelfAttention(BertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dropoutGenerator);
        this.dropoutGenerator = dropoutGenerator;
        dropout = (float)config.AttentionProbsDropoutProb;
        heads = config.NumAttentionHeads;
        headDim = config.HeadDim;
        int h = config.HiddenSize;
        query = RegisterModule<LinearLayer>("query", Placeholder.Linear(h, h, bias: true));
        key = RegisterModule<LinearLayer>("key", Placeholder.Linear(h, h, bias: true));
        value = RegisterModule<LinearLayer>("value", Placeholder.Linear(h, h, bias: true));
    }

    /// <summary>The context [B, T, H] (heads concatenated).</summary>
    public Tensor Forward(Tensor hidden, Tensor? keyMask) => Forward(hidden, keyMask, null, 0);

    /// <summary>The context with layer <paramref name="layer"/>'s prefix keys/values in front of this layer's own (prefix tuning).</summary>
    internal Tensor Forward(Tensor hidden, Tensor? keyMask, Tensor? prefixKeyValues, int layer)
    {
        var q = AttentionHelpers.SplitHeads(query.Module.Forward(hidden), heads, headDim);
        var k = AttentionHelpers.SplitHeads(key.Module.Forward(hidden), heads, headDim);
        var v = AttentionHelpers.SplitHeads(value.Module.Forward(hidden), heads, headDim);
        (k, v) = PromptPlumbing.WithPrefix(prefixKeyValues, layer, k, v);
        return AttentionHelpers.MergeHeads(q.ScaledDotProductAttention(k, v, keyMask, dropout: IsTraining ? dropout : 0f, generator: dropoutGenerator));
    }
}

/// <summary>
/// HF <c>BertSelfOutput</c> / <c>BertOutput</c> (same shape of computation): LN(dropout(dense(h)) + residual).
/// </summary>
public sealed class BertProjectionOutput : Module
{
    private readonly ModuleSlot<LinearLayer> dense;
    private readonly ModuleSlot<LayerNorm> layerNorm;
    private readonly ModuleSlot<Dropout> dropout;

    /// <summary>A projection from <paramref name="inFeatures"/> to hidden_size with its residual LayerNorm.</summary>
    public BertProjectionOutput(BertConfig config, int inFeatures, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        dense = RegisterModule<LinearLayer>("dense", Placeholder.Linear(inFeatures, config.HiddenSize, bias: true));
        layerNorm = RegisterModule("LayerNorm", new LayerNorm(config.HiddenSize, (float)config.LayerNormEps));
        dropout = RegisterModule("dropout", new Dropout((float)config.HiddenDropoutProb, dropoutGenerator));
    }

    /// <summary>LN(dropout(dense(h)) + residual).</summary>
    public Tensor Forward(Tensor hidden, Tensor residual) =>
        layerNorm.Module.Forward(dropout.Module.Forward(dense.Module.Forward(hidden)).Add(residual));
}

/// <summary>HF <c>BertIntermediate</c>: act(dense(a)) into intermediate_size.</summary>
public sealed class BertIntermediate : Module
{
    private readonly ModuleSlot<LinearLayer> dense;
    private readonly ActivationKind activation;

    /// <summary>Creates the expansion layer.</summary>
    public BertIntermediate(BertConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        activation = Activation.Parse(config.HiddenAct, config, "hidden_act");
        dense = RegisterModule<LinearLayer>("dense", Placeholder.Linear(config.HiddenSize, config.IntermediateSize, bias: true));
    }

    /// <summary>act(dense(a)).</summary>
    public Tensor Forward(Tensor hidden) => activation.Apply(dense.Module.Forward(hidden));
}
