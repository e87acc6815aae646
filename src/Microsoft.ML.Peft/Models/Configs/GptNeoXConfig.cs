namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>
/// GPT-NeoX decoder (<c>model_type</c> "gpt_neox": Pythia, GPT-NeoX-20B) with transformers' <c>GPTNeoXConfig</c>
/// defaults: partial rotary embeddings on the first <see cref="RotaryDims"/> of each head, LayerNorm, optional
/// parallel attention/MLP residual.
/// </summary>
public sealed record GptNeoXConfig : ModelConfig
{
    /// <summary>gpt-neox-20b defaults.</summary>
    public GptNeoXConfig()
    {
        ModelType = "gpt_neox";
        VocabSize = 50432;
        HiddenSize = 6144;
        NumHiddenLayers = 44;
        NumAttentionHeads = 64;
        BosTokenId = 0;
        EosTokenIds = [2];
        TieWordEmbeddings = false;
    }

    /// <summary><c>intermediate_size</c>.</summary>
    public int IntermediateSize { get; init; } = 24576;

    /// <summary><c>hidden_act</c> ("gelu").</summary>
    public string HiddenAct { get; init; } = "gelu";

    /// <summary><c>rotary_pct</c>: fraction of each head's dimensions that are rotated.</summary>
    public double RotaryPct { get; init; } = 0.25;

    /// <summary><c>rotary_emb_base</c>: rotary base frequency.</summary>
    public double RotaryEmbBase { get; init; } = 10000;

    /// <summary><c>attention_dropout</c>.</summary>
    public double AttentionDropout { get; init; }

    /// <summary><c>hidden_dropout</c>.</summary>
    public double HiddenDropout { get; init; }

    /// <summary><c>classifier_dropout</c>.</summary>
    public double ClassifierDropout { get; init; } = 0.1;

    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary><c>initializer_range</c>.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary><c>layer_norm_eps</c>.</summary>
    public double LayerNormEps { get; init; } = 1e-5;

    /// <summary><c>use_parallel_residual</c>: x + attn(ln1(x)) + mlp(ln2(x)) instead of sequential residuals.</summary>
    public bool UseParallelResidual { get; init; } = true;

    /// <summary><c>attention_bias</c>: biases on query_key_value and dense.</summary>
    public bool AttentionBias { get; init; } = true;

    /// <summary><c>rope_scaling</c>; null for plain RoPE.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>Size of one attention head.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <summary>Rotated dimensions per head: ⌊head_dim × rotary_pct⌋, as transformers computes it.</summary>
    public int RotaryDims => (int)(HeadDim * RotaryPct);

    /// <inheritdoc />
    public override void Validate(string sourceName)
    {
        base.Validate(sourceName);
        RequireDivisible(sourceName, "hidden_size", HiddenSize, "num_attention_heads", NumAttentionHeads);
        RequirePositive(sourceName, "intermediate_size", IntermediateSize);
        if (!(RotaryPct > 0 && RotaryPct <= 1)) throw new ModelConfigException(sourceName, "rotary_pct", $"must be in (0, 1], found {RotaryPct}");
    }

    internal static GptNeoXConfig Read(ConfigJson j)
    {
        var d = new GptNeoXConfig();
        var ropeParameters = j.Object("rope_parameters");
        return d with
        {
            VocabSize = j.Int("vocab_size", d.VocabSize),
            HiddenSize = j.Int("hidden_size", d.HiddenSize),
            NumHiddenLayers = j.Int("num_hidden_layers", d.NumHiddenLayers),
            NumAttentionHeads = j.Int("num_attention_heads", d.NumAttentionHeads),
            IntermediateSize = j.Int("intermediate_size", d.IntermediateSize),
            HiddenAct = j.String("hidden_act", d.HiddenAct),
            RotaryPct = j.DoubleOrNull("rotary_pct") ?? ropeParameters?.DoubleOrNull("partial_rotary_factor") ?? d.RotaryPct,
            RotaryEmbBase = j.DoubleOrNull("rotary_emb_base") ?? ropeParameters?.DoubleOrNull("rope_theta") ?? d.RotaryEmbBase,
            AttentionDropout = j.Double("attention_dropout", d.AttentionDropout),
            HiddenDropout = j.Double("hidden_dropout", d.HiddenDropout),
            ClassifierDropout = j.Double("classifier_dropout", d.ClassifierDropout),
            MaxPositionEmbeddings = j.Int("max_position_embeddings", d.MaxPositionEmbeddings),
            InitializerRange = j.Double("initializer_range", d.InitializerRange),
            LayerNormEps = j.Double("layer_norm_eps", d.LayerNormEps),
            UseParallelResidual = j.Bool("use_parallel_residual", d.UseParallelResidual),
            AttentionBias = j.Bool("attention_bias", d.AttentionBias),
            RopeScaling = j.Object("rope_scaling") is { } legacy ? RopeScaling.Read(legacy, "rope_scaling") : RopeScaling.Read(ropeParameters, "rope_parameters"),
        };
    }
}
