using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.GptNeoX;

/// <summary>
/// HF <c>GPTNeoXLayer</c>: with use_parallel_residual, out = x + attention(input_layernorm(x)) +
/// mlp(post_attention_layernorm(x)); otherwise h = x + attention(...), out = h + mlp(post_attention_layernorm(h)).
/// </summary>
public sealed class GptNeoXLayer : Module
{
    private readonly ModuleSlot<LayerNorm> inputLayerNorm;
    private readonly ModuleSlot<LayerNorm> postAttentionLayerNorm;
    private readonly ModuleSlot<Dropout> postAttentionDropout;
    private readonly ModuleSlot<Dropout> postMlpDropout;
    private readonly ModuleSlot<GptNeoXAttention> attention;
    private readonly ModuleSlot<GptNeoXMlp> mlp;
    private readonly bool parallelResidual;

    /// <summary>Block <paramref name="layerIndex"/>.</summary>
    public GptNeoXLayer(GptNeoXConfig config, int layerIndex, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        parallelResidual = config.UseParallelResidual;
        float eps = (float)config.LayerNormEps;
        inputLayerNorm = RegisterModule("input_layernorm", new LayerNorm(config.HiddenSize, eps));
        postAttentionLayerNorm = RegisterModule("post_attention_layernorm", new LayerNorm(config.HiddenSize, eps));
        postAttentionDropout = RegisterModule("post_attention_dropout", new Dropout((float)config.HiddenDropout, dropoutGenerator));
        postMlpDropout = RegisterModule("post_mlp_dropout", new Dropout((float)config.HiddenDropout, dropoutGenerator));
        attention = RegisterModule("attention", new GptNeoXAttention(config, layerIndex, dropoutGenerator));
        mlp = RegisterModule("mlp", new GptNeoXMlp(config));
    }

    internal Tensor Forward(Tensor hidden, DecoderStep step, Tensor cos, Tensor sin)
    {
        var attn = postAttentionDropout.Module.Forward(attention.Module.Forward(inputLayerNorm.Module.Forward(hidden), step, cos, sin));
        if (parallelResidual)
            return postMlpDropout.Module.Forward(mlp.Module.Forward(postAttentionLayerNorm.Module.Forward(hidden))).Add(attn).Add(hidden);
        var h = attn.Add(hidden);
        return postMlpDropout.Module.Forward(mlp.Module.Forward(postAttentionLayerNorm.Module.Forward(h))).Add(h);
    }
}

/// <summary>
/// HF <c>GPTNeoXAttention</c>: one fused <c>query_key_value</c> projection whose output, viewed [B, T, heads, 3·d],
/// holds per head [q | k | v] (HF's interleaved layout); rotate-half RoPE on the first rotary_ndims features of q and k
/// (partial rotary); causal attention (attention_dropout on the probabilities in training mode); <c>dense</c>. The projection stays one module so LoRA targets
/// "query_key_value" as PEFT does; q, k, v are strided views of its output.
/// </summary>
public sealed class GptNeoXAttention : Module
{
    private readonly ModuleSlot<LinearLayer> queryKeyValue;
    private readonly ModuleSlot<LinearLayer> dense;
    private readonly int heads;
    private readonly int headDim;
    private readonly int layerIndex;
    private readonly float dropout;
    private readonly Generator dropoutGenerator;

    /// <summary>Attention of block <paramref name="layerIndex"/>.</summary>
    public GptNeoXAttention(GptNeoXConfig config, int layerIndex, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dropoutGenerator);
        this.dropoutGenerator = dropoutGenerator;
        dropout = (float)config.AttentionDropout;
        heads = config.NumAttentionHeads;
        headDim = config.HeadDim;
        this.layerIndex = layerIndex;
        int h = config.HiddenSize;
        queryKeyValue = RegisterModule<LinearLayer>("query_key_value", Placeholder.Linear(h, 3 * h, config.AttentionBias));
        dense = RegisterModule<LinearLayer>("dense", Placeholder.Linear(h, h, config.AttentionBias));
    }

    internal Tensor Forward(Tensor hidden, DecoderStep step, Tensor cos, Tensor sin)
    {
        int b = hidden.Size(0), t = hidden.Size(1);
        var qkv = queryKeyValue.Module.Forward(hidden).Reshape(b, t, heads, 3 * headDim);
        var q = qkv.Narrow(3, 0, headDim).Transpose(1, 2).ApplyRotary(cos, sin, step.Positions);
        var k = qkv.Narrow(3, headDim, headDim).Transpose(1, 2).ApplyRotary(cos, sin, step.Positions);
        var v = qkv.Narrow(3, 2 * headDim, headDim).Transpose(1, 2);
        (k, v) = step.KeysAndValues(layerIndex, k, v);
        var context = q.ScaledDotProductAttention(k, v, step.KeyMask, causal: true, dropout: IsTraining ? dropout : 0f, generator: dropoutGenerator);
        return dense.Module.Forward(AttentionHelpers.MergeHeads(context));
    }
}

/// <summary>HF <c>GPTNeoXMLP</c>: dense_4h_to_h(act(dense_h_to_4h(x))).</summary>
public sealed class GptNeoXMlp : Module
{
    private readonly ModuleSlot<LinearLayer> denseHTo4H;
    private readonly ModuleSlot<LinearLayer> dense4HToH;
    private readonly ActivationKind activation;

    /// <summary>Creates the MLP.</summary>
    public GptNeoXMlp(GptNeoXConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        activation = Activation.Parse(config.HiddenAct, config, "hidden_act");
        denseHTo4H = RegisterModule<LinearLayer>("dense_h_to_4h", Placeholder.Linear(config.HiddenSize, config.IntermediateSize, bias: true));
        dense4HToH = RegisterModule<LinearLayer>("dense_4h_to_h", Placeholder.Linear(config.IntermediateSize, config.HiddenSize, bias: true));
    }

    /// <summary>dense_4h_to_h(act(dense_h_to_4h(x))).</summary>
    public Tensor Forward(Tensor hidden) => dense4HToH.Module.Forward(activation.Apply(denseHTo4H.Module.Forward(hidden)));
}
