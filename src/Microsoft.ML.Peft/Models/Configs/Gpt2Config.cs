namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>
/// GPT-2 decoder (<c>model_type</c> "gpt2") with transformers' <c>GPT2Config</c> field names and defaults (gpt2 small).
/// <see cref="NEmbd"/>, <see cref="NLayer"/> and <see cref="NHead"/> alias the common size properties.
/// </summary>
public sealed record Gpt2Config : ModelConfig
{
    /// <summary>gpt2 defaults: 50257 tokens, 1024 positions, n_embd 768, 12 layers, 12 heads.</summary>
    public Gpt2Config()
    {
        ModelType = "gpt2";
        VocabSize = 50257;
        HiddenSize = 768;
        NumHiddenLayers = 12;
        NumAttentionHeads = 12;
        BosTokenId = 50256;
        EosTokenIds = [50256];
    }

    /// <summary><c>n_embd</c> (= hidden size).</summary>
    public int NEmbd { get => HiddenSize; init => HiddenSize = value; }

    /// <summary><c>n_layer</c>.</summary>
    public int NLayer { get => NumHiddenLayers; init => NumHiddenLayers = value; }

    /// <summary><c>n_head</c>.</summary>
    public int NHead { get => NumAttentionHeads; init => NumAttentionHeads = value; }

    /// <summary><c>n_positions</c>: rows of the learned position embedding.</summary>
    public int NPositions { get; init; } = 1024;

    /// <summary><c>n_inner</c>; null means 4 × n_embd (see <see cref="InnerSize"/>).</summary>
    public int? NInner { get; init; }

    /// <summary>Width of the MLP: <see cref="NInner"/> or 4 × <see cref="NEmbd"/>.</summary>
    public int InnerSize => NInner ?? 4 * NEmbd;

    /// <summary><c>activation_function</c>: "gelu_new" (tanh approximation) by default.</summary>
    public string ActivationFunction { get; init; } = "gelu_new";

    /// <summary><c>resid_pdrop</c>.</summary>
    public double ResidPdrop { get; init; } = 0.1;

    /// <summary><c>embd_pdrop</c>.</summary>
    public double EmbdPdrop { get; init; } = 0.1;

    /// <summary><c>attn_pdrop</c>.</summary>
    public double AttnPdrop { get; init; } = 0.1;

    /// <summary><c>layer_norm_epsilon</c>.</summary>
    public double LayerNormEpsilon { get; init; } = 1e-5;

    /// <summary><c>initializer_range</c>.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary><c>scale_attn_weights</c>: divide scores by √head_dim.</summary>
    public bool ScaleAttnWeights { get; init; } = true;

    /// <summary><c>scale_attn_by_inverse_layer_idx</c>: also divide by (layer index + 1).</summary>
    public bool ScaleAttnByInverseLayerIdx { get; init; }

    /// <summary><c>reorder_and_upcast_attn</c>.</summary>
    public bool ReorderAndUpcastAttn { get; init; }

    /// <summary>Size of one attention head.</summary>
    public int HeadDim => NEmbd / NHead;

    /// <inheritdoc />
    public override void Validate(string sourceName)
    {
        base.Validate(sourceName);
        RequireDivisible(sourceName, "n_embd", NEmbd, "n_head", NHead);
        RequirePositive(sourceName, "n_positions", NPositions);
        RequirePositive(sourceName, "n_inner", InnerSize);
    }

    internal static Gpt2Config Read(ConfigJson j)
    {
        var d = new Gpt2Config();
        return d with
        {
            VocabSize = j.Int("vocab_size", d.VocabSize),
            NPositions = j.Int("n_positions", d.NPositions),
            NEmbd = j.Int("n_embd", d.NEmbd),
            NLayer = j.Int("n_layer", d.NLayer),
            NHead = j.Int("n_head", d.NHead),
            NInner = j.IntOrNull("n_inner"),
            ActivationFunction = j.String("activation_function", d.ActivationFunction),
            ResidPdrop = j.Double("resid_pdrop", d.ResidPdrop),
            EmbdPdrop = j.Double("embd_pdrop", d.EmbdPdrop),
            AttnPdrop = j.Double("attn_pdrop", d.AttnPdrop),
            LayerNormEpsilon = j.Double("layer_norm_epsilon", d.LayerNormEpsilon),
            InitializerRange = j.Double("initializer_range", d.InitializerRange),
            ScaleAttnWeights = j.Bool("scale_attn_weights", d.ScaleAttnWeights),
            ScaleAttnByInverseLayerIdx = j.Bool("scale_attn_by_inverse_layer_idx", d.ScaleAttnByInverseLayerIdx),
            ReorderAndUpcastAttn = j.Bool("reorder_and_upcast_attn", d.ReorderAndUpcastAttn),
        };
    }
}
