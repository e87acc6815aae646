using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Gpt2;

/// <summary>HF <c>GPT2Block</c>: h = x + attn(ln_1(x)); out = h + mlp(ln_2(h)).</summary>
public sealed class Gpt2Block : Module
{
    private readonly ModuleSlot<LayerNorm> ln1;
    private readonly ModuleSlot<Gpt2Attention> attn;
    private readonly ModuleSlot<LayerNorm> ln2;
    private readonly ModuleSlot<Gpt2Mlp> mlp;

    /// <summary>Block <paramref name="layerIndex"/>.</summary>
    public Gpt2Block(Gpt2Config config, int layerIndex, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        float eps = (float)config.LayerNormEpsilon;
        ln1 = RegisterModule("ln_1", new LayerNorm(config.NEmbd, eps));
        attn = RegisterModule("attn", new Gpt2Attention(config, layerIndex, dropoutGenerator));
        ln2 = RegisterModule("ln_2", new LayerNorm(config.NEmbd, eps));
        mlp = RegisterModule("mlp", new Gpt2Mlp(config, dropoutGenerator));
    }

    internal Tensor Forward(Tensor hidden, DecoderStep step)
    {
        var h = hidden.Add(attn.Module.Forward(ln1.Module.Forward(hidden), step));
        return h.Add(mlp.Module.Forward(ln2.Module.Forward(h)));
    }
}

/// <summary>
/// HF <c>GPT2Attention</c>: c_attn (Conv1D, output columns [q | k | v]) → causal attention (attn_pdrop on the
/// probabilities in training mode) → c_proj (Conv1D) → residual dropout. q, k and v are strided views of c_attn's output; nothing is split by copying.
/// </summary>
public sealed class Gpt2Attention : Module
{
    private readonly ModuleSlot<LinearLayer> cAttn;
    private readonly ModuleSlot<LinearLayer> cProj;
    private readonly ModuleSlot<Dropout> residDropout;
    private readonly int heads;
    private readonly int headDim;
    private readonly int layerIndex;
    private readonly float scale;
    private readonly float attnDropout;
    private readonly Generator dropoutGenerator;

    /// <summary>Attention of block <paramref name="layerIndex"/> (which scale_attn_by_inverse_layer_idx uses).</summary>
    public Gpt2Attention(Gpt2Config config, int layerIndex, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        heads = config.NHead;
        headDim = config.HeadDim;
        this.layerIndex = layerIndex;
        this.dropoutGenerator = dropoutGenerator;
        attnDropout = (float)config.AttnPdrop;
        scale = config.ScaleAttnWeights ? 1f / MathF.Sqrt(headDim) : 1f;
        if (config.ScaleAttnByInverseLayerIdx) scale /= layerIndex + 1;
        int e = config.NEmbd;
        cAttn = RegisterModule<LinearLayer>("c_attn", new Conv1D(Placeholder.Create(e, 3 * e), Placeholder.Create(3 * e)));
        cProj = RegisterModule<LinearLayer>("c_proj", new Conv1D(Placeholder.Create(e, e), Placeholder.Create(e)));
        residDropout = RegisterModule("resid_dropout", new Dropout((float)config.ResidPdrop, dropoutGenerator));
    }

    internal Tensor Forward(Tensor hidden, DecoderStep step)
    {
        int e = heads * headDim;
        var qkv = cAttn.Module.Forward(hidden);
        var q = AttentionHelpers.SplitHeads(qkv.Narrow(2, 0, e), heads, headDim);
        var k = AttentionHelpers.SplitHeads(qkv.Narrow(2, e, e), heads, headDim);
        var v = AttentionHelpers.SplitHeads(qkv.Narrow(2, 2 * e, e), heads, headDim);
        (k, v) = step.KeysAndValues(layerIndex, k, v);
        var context = q.ScaledDotProductAttention(k, v, step.KeyMask, causal: true, scale: scale, dropout: IsTraining ? attnDropout : 0f, generator: dropoutGenerator);
        return residDropout.Module.Forward(cProj.Module.Forward(AttentionHelpers.MergeHeads(context)));
    }
}

/// <summary>HF <c>GPT2MLP</c>: dropout(c_proj(act(c_fc(x)))), Conv1D layers.</summary>
public sealed class Gpt2Mlp : Module
{
    private readonly ModuleSlot<LinearLayer> cFc;
    private readonly ModuleSlot<LinearLayer> cProj;
    private readonly ModuleSlot<Dropout> dropout;
    private readonly ActivationKind activation;

    /// <summary>Creates the MLP (width n_inner, default 4·n_embd).</summary>
    public Gpt2Mlp(Gpt2Config config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        activation = Activation.Parse(config.ActivationFunction, config, "activation_function");
        int e = config.NEmbd, inner = config.InnerSize;
        cFc = RegisterModule<LinearLayer>("c_fc", new Conv1D(Placeholder.Create(e, inner), Placeholder.Create(inner)));
        cProj = RegisterModule<LinearLayer>("c_proj", new Conv1D(Placeholder.Create(inner, e), Placeholder.Create(e)));
        dropout = RegisterModule("dropout", new Dropout((float)config.ResidPdrop, dropoutGenerator));
    }

    /// <summary>dropout(c_proj(act(c_fc(x)))).</summary>
    public Tensor Forward(Tensor hidden) => dropout.Module.Forward(cProj.Module.Forward(activation.Apply(cFc.Module.Forward(hidden))));
}
