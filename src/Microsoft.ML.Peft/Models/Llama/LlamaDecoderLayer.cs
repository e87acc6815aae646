using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Llama;

/// <summary>
/// HF <c>LlamaDecoderLayer</c> (also Mistral, Qwen2): h = x + self_attn(input_layernorm(x));
/// out = h + mlp(post_attention_layernorm(h)), RMSNorm throughout.
/// </summary>
public sealed class LlamaDecoderLayer : Module
{
    private readonly ModuleSlot<RMSNorm> inputLayerNorm;
    private readonly ModuleSlot<LlamaAttention> selfAttn;
    private readonly ModuleSlot<RMSNorm> postAttentionLayerNorm;
    private readonly ModuleSlot<LlamaMlp> mlp;

    /// <summary>Block <paramref name="layerIndex"/> of a model with <paramref name="config"/>.</summary>
    public LlamaDecoderLayer(LlamaConfig config, int layerIndex, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        float eps = (float)config.RmsNormEps;
        inputLayerNorm = RegisterModule("input_layernorm", new RMSNorm(config.HiddenSize, eps));
        selfAttn = RegisterModule("self_attn", new LlamaAttention(config, layerIndex, dropoutGenerator));
        postAttentionLayerNorm = RegisterModule("post_attention_layernorm", new RMSNorm(config.HiddenSize, eps));
        mlp = RegisterModule("mlp", new LlamaMlp(config));
    }

    /// <summary>The block on [B, T, H] with the rotary tables of this forward.</summary>
    internal Tensor Forward(Tensor hidden, DecoderStep step, Tensor cos, Tensor sin)
    {
        var h = hidden.Add(selfAttn.Module.Forward(inputLayerNorm.Module.Forward(hidden), step, cos, sin));
        return h.Add(mlp.Module.Forward(postAttentionLayerNorm.Module.Forward(h)));
    }

    /// <summary>
    /// The block alone on a float32 [B, T, H] input with explicit int32 positions [B, T] and keep-mask [B, T]
    /// (what a layer-level test or a pipeline stage needs); rotary tables come from <paramref name="rotary"/>.
    /// </summary>
    public Tensor Forward(Tensor hidden, Tensor positionIds, Tensor? attentionMask, RotaryEmbedding rotary)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(positionIds);
        ArgumentNullException.ThrowIfNull(rotary);
        var positions = positionIds.IsContiguous ? positionIds : positionIds.Contiguous();
        int limit = 0;
        foreach (int p in positions.AsReadOnlySpan<int>()) limit = Math.Max(limit, p + 1);
        var step = new DecoderStep { Positions = positions, PositionLimit = limit, KeyMask = AttentionHelpers.AdditiveKeyMask(attentionMask) };
        var (cos, sin) = rotary.Tables(limit);
        return Forward(hidden, step, cos, sin);
    }
}

/// <summary>
/// HF <c>LlamaAttention</c> with grouped-query heads: q_proj/k_proj/v_proj (biases for Qwen2 or attention_bias),
/// rotate-half RoPE on q and k, causal softmax attention (sliding window where the config says so; attention_dropout
/// on the probabilities in training mode), o_proj.
/// K/V heads are shared by num_heads / num_key_value_heads query heads inside the fused kernel, never repeated in memory.
/// An attached <see cref="IAttentionAdapter"/> (LLaMA-Adapter's adaption prompt, under the child name <c>adaption</c>)
/// adds o_proj(its context) to the output, as PEFT's <c>AdaptedAttention</c> does.
/// </summary>
public sealed class LlamaAttention : Module
{
    private ModuleSlot<Module>? adapterSlot;
    private readonly ModuleSlot<LinearLayer> qProj;
    private readonly ModuleSlot<LinearLayer> kProj;
    private readonly ModuleSlot<LinearLayer> vProj;
    private readonly ModuleSlot<LinearLayer> oProj;
    private readonly int heads;
    private readonly int kvHeads;
    private readonly int headDim;
    private readonly int layerIndex;
    private readonly int? slidingWindow;
    private readonly float dropout;
    private readonly Generator dropoutGenerator;

    /// <summary>Attention of block <paramref name="layerIndex"/>.</summary>
    public LlamaAttention(LlamaConfig config, int layerIndex, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(dropoutGenerator);
        this.dropoutGenerator = dropoutGenerator;
        dropout = (float)config.AttentionDropout;
        heads = config.NumAttentionHeads;
        kvHeads = config.NumKeyValueHeads;
        headDim = config.HeadDim;
        this.layerIndex = layerIndex;
        slidingWindow = config.UsesSlidingWindow(layerIndex) ? config.SlidingWindow : null;
        int h = config.HiddenSize;
        HiddenSize = h;
        qProj = RegisterModule<LinearLayer>("q_proj", Placeholder.Linear(h, heads * headDim, config.QkvBias));
        kProj = RegisterModule<LinearLayer>("k_proj", Placeholder.Linear(h, kvHeads * headDim, config.QkvBias));
        vProj = RegisterModule<LinearLayer>("v_proj", Placeholder.Linear(h, kvHeads * headDim, config.QkvBias));
        oProj = RegisterModule<LinearLayer>("o_proj", Placeholder.Linear(heads * headDim, h, config.OutputProjectionBias));
    }

    internal Tensor Forward(Tensor hidden, DecoderStep step, Tensor cos, Tensor sin)
    {
        var q = AttentionHelpers.SplitHeads(qProj.Module.Forward(hidden), heads, headDim).ApplyRotary(cos, sin, step.Positions);
        var k = AttentionHelpers.SplitHeads(kProj.Module.Forward(hidden), kvHeads, headDim).ApplyRotary(cos, sin, step.Positions);
        var v = AttentionHelpers.SplitHeads(vProj.Module.Forward(hidden), kvHeads, headDim);
        (k, v) = step.KeysAndValues(layerIndex, k, v);
        var context = q.ScaledDotProductAttention(k, v, step.KeyMask, causal: true, dropout: IsTraining ? dropout : 0f, generator: dropoutGenerator, slidingWindow: slidingWindow);
        var output = oProj.Module.Forward(AttentionHelpers.MergeHeads(context));
        if (adapterSlot?.Module is IAttentionAdapter adapter && adapter.Attend(q, kProj.Module, vProj.Module, kvHeads, headDim) is { } extra)
            output = output.Add(oProj.Module.Forward(AttentionHelpers.MergeHeads(extra)));
        return output;
    }

    /// <summary>The width of the layer's input (hidden_size).</summary>
    public int HiddenSize { get; }

    /// <summary>The attached attention adapter, or null.</summary>
    public IAttentionAdapter? Adapter => adapterSlot?.Module as IAttentionAdapter;

    /// <summary>Puts <paramref name="module"/> (an <see cref="IAttentionAdapter"/>, or an empty module to detach) under the child name <c>adaption</c>.</summary>
    public void SetAdapterModule(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (adapterSlot is null) adapterSlot = RegisterModule("adaption", module);
        else ReplaceModule("adaption", module);
    }
}

/// <summary>HF <c>LlamaMLP</c> (SwiGLU): down_proj(act(gate_proj(x)) ⊙ up_proj(x)).</summary>
public sealed class LlamaMlp : Module
{
    private readonly ModuleSlot<LinearLayer> gateProj;
    private readonly ModuleSlot<LinearLayer> upProj;
    private readonly ModuleSlot<LinearLayer> downProj;
    private readonly ActivationKind activation;

    /// <summary>Creates the MLP.</summary>
    public LlamaMlp(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        activation = Activation.Parse(config.HiddenAct, config, "hidden_act");
        int h = config.HiddenSize, i = config.IntermediateSize;
        gateProj = RegisterModule<LinearLayer>("gate_proj", Placeholder.Linear(h, i, config.MlpBias));
        upProj = RegisterModule<LinearLayer>("up_proj", Placeholder.Linear(h, i, config.MlpBias));
        downProj = RegisterModule<LinearLayer>("down_proj", Placeholder.Linear(i, h, config.MlpBias));
    }

    /// <summary>down_proj(act(gate_proj(x)) ⊙ up_proj(x)).</summary>
    public Tensor Forward(Tensor hidden) =>
        downProj.Module.Forward(activation.Apply(gateProj.Module.Forward(hidden)).Mul(upProj.Module.Forward(hidden)));
}
