namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>
/// Llama-family decoder: <c>model_type</c> "llama", "mistral" and "qwen2" share this record (pre-norm RMSNorm blocks,
/// rotary attention with grouped-query heads, SwiGLU MLP). Defaults follow the transformers config class of the
/// given <see cref="ModelConfig.ModelType"/> (see <see cref="ForModelType"/>); the differences between the three
/// (biases, sliding window) are exposed as <see cref="QkvBias"/>, <see cref="OutputProjectionBias"/> and
/// <see cref="UsesSlidingWindow"/>.
/// </summary>
public sealed record LlamaConfig : ModelConfig
{
    private int? _numKeyValueHeads;
    private int? _headDim;

    /// <summary>LlamaConfig defaults (Llama-2-7B shapes).</summary>
    public LlamaConfig()
    {
        ModelType = "llama";
        VocabSize = 32000;
        HiddenSize = 4096;
        NumHiddenLayers = 32;
        NumAttentionHeads = 32;
        BosTokenId = 1;
        EosTokenIds = [2];
        TieWordEmbeddings = false;
    }

    /// <summary>Defaults of transformers' LlamaConfig, MistralConfig or Qwen2Config.</summary>
    public static LlamaConfig ForModelType(string modelType) => modelType switch
    {
        "llama" => new LlamaConfig(),
        "mistral" => new LlamaConfig
        {
            ModelType = "mistral", IntermediateSize = 14336, NumKeyValueHeads = 8, MaxPositionEmbeddings = 4096 * 32, SlidingWindow = 4096,
        },
        "qwen2" => new LlamaConfig
        {
            ModelType = "qwen2", VocabSize = 151936, IntermediateSize = 22016, NumKeyValueHeads = 32, MaxPositionEmbeddings = 32768,
            BosTokenId = null, EosTokenIds = [], SlidingWindow = null, MaxWindowLayers = 28,
        },
        _ => throw new ArgumentException($"'{modelType}' is not a Llama-family model type (llama, mistral, qwen2)", nameof(modelType)),
    };

    /// <summary><c>intermediate_size</c>: width of the SwiGLU MLP.</summary>
    public int IntermediateSize { get; init; } = 11008;

    /// <summary><c>num_key_value_heads</c> (grouped-query attention); defaults to the number of attention heads.</summary>
    public int NumKeyValueHeads { get => _numKeyValueHeads ?? NumAttentionHeads; init => _numKeyValueHeads = value; }

    /// <summary><c>head_dim</c>; defaults to hidden_size / num_attention_heads.</summary>
    public int HeadDim { get => _headDim ?? HiddenSize / NumAttentionHeads; init => _headDim = value; }

    /// <summary><c>hidden_act</c> of the MLP gate ("silu").</summary>
    public string HiddenAct { get; init; } = "silu";

    /// <summary><c>max_position_embeddings</c>: longest context the rotary tables are built for.</summary>
    public int MaxPositionEmbeddings { get; init; } = 2048;

    /// <summary><c>initializer_range</c>.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary><c>rms_norm_eps</c>.</summary>
    public double RmsNormEps { get; init; } = 1e-6;

    /// <summary><c>rope_theta</c>: rotary base frequency.</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary><c>rope_scaling</c>; null for plain RoPE.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary><c>attention_bias</c> (llama): biases on q, k, v and o projections.</summary>
    public bool AttentionBias { get; init; }

    /// <summary><c>attention_dropout</c>.</summary>
    public double AttentionDropout { get; init; }

    /// <summary><c>mlp_bias</c> (llama): biases on gate, up and down projections.</summary>
    public bool MlpBias { get; init; }

    /// <summary>Sliding-window attention span in tokens, or null for full attention (mistral; qwen2 with use_sliding_window).</summary>
    public int? SlidingWindow { get; init; }

    /// <summary><c>max_window_layers</c> (qwen2): layers below this index use full attention.</summary>
    public int MaxWindowLayers { get; init; } = 28;

    /// <summary>Whether q, k, v projections have a bias: always for qwen2, <see cref="AttentionBias"/> otherwise.</summary>
    public bool QkvBias => ModelType == "qwen2" || AttentionBias;

    /// <summary>Whether the attention output projection has a bias: never for qwen2, <see cref="AttentionBias"/> otherwise.</summary>
    public bool OutputProjectionBias => ModelType != "qwen2" && AttentionBias;

    /// <summary>Whether layer <paramref name="layer"/> uses sliding-window attention.</summary>
    public bool UsesSlidingWindow(int layer) => SlidingWindow is not null && (ModelType != "qwen2" || layer >= MaxWindowLayers);

    /// <inheritdoc />
    public override void Validate(string sourceName)
    {
        base.Validate(sourceName);
        if (_headDim is null) RequireDivisible(sourceName, "hidden_size", HiddenSize, "num_attention_heads", NumAttentionHeads);
        RequirePositive(sourceName, "head_dim", HeadDim);
        RequirePositive(sourceName, "num_key_value_heads", NumKeyValueHeads);
        RequireDivisible(sourceName, "num_attention_heads", NumAttentionHeads, "num_key_value_heads", NumKeyValueHeads);
        RequirePositive(sourceName, "intermediate_size", IntermediateSize);
        if (!(RmsNormEps > 0)) throw new ModelConfigException(sourceName, "rms_norm_eps", $"must be positive, found {RmsNormEps}");
        if (!(RopeTheta > 0)) throw new ModelConfigException(sourceName, "rope_theta", $"must be positive, found {RopeTheta}");
        if (SlidingWindow is <= 0) throw new ModelConfigException(sourceName, "sliding_window", $"must be positive, found {SlidingWindow}");
    }

    internal static LlamaConfig Read(ConfigJson j, string modelType)
    {
        var d = ForModelType(modelType);
        // transformers ≥ 5 nests rope settings in "rope_parameters"; earlier versions use rope_theta + rope_scaling.
        var ropeParameters = j.Object("rope_parameters");
        var ropeScaling = j.Object("rope_scaling") is { } legacy ? RopeScaling.Read(legacy, "rope_scaling") : RopeScaling.Read(ropeParameters, "rope_parameters");
        int? slidingWindow = modelType switch
        {
            "mistral" => j.Present("sliding_window") ? j.IntOrNull("sliding_window") : d.SlidingWindow,
            "qwen2" => j.Bool("use_sliding_window", false) ? j.IntOrNull("sliding_window", 4096) : null,
            _ => null,
        };
        var result = d with
        {
            VocabSize = j.Int("vocab_size", d.VocabSize),
            HiddenSize = j.Int("hidden_size", d.HiddenSize),
            IntermediateSize = j.Int("intermediate_size", d.IntermediateSize),
            NumHiddenLayers = j.Int("num_hidden_layers", d.NumHiddenLayers),
            NumAttentionHeads = j.Int("num_attention_heads", d.NumAttentionHeads),
            HiddenAct = j.String("hidden_act", d.HiddenAct),
            MaxPositionEmbeddings = j.Int("max_position_embeddings", d.MaxPositionEmbeddings),
            InitializerRange = j.Double("initializer_range", d.InitializerRange),
            RmsNormEps = j.Double("rms_norm_eps", d.RmsNormEps),
            RopeTheta = j.DoubleOrNull("rope_theta") ?? ropeParameters?.DoubleOrNull("rope_theta") ?? d.RopeTheta,
            RopeScaling = ropeScaling,
            AttentionBias = j.Bool("attention_bias", d.AttentionBias),
            AttentionDropout = j.Double("attention_dropout", d.AttentionDropout),
            MlpBias = j.Bool("mlp_bias", d.MlpBias),
            SlidingWindow = slidingWindow,
            MaxWindowLayers = j.Int("max_window_layers", d.MaxWindowLayers),
        };
        // Unset optional sizes keep their derived defaults (num_key_value_heads → heads, head_dim → hidden/heads).
        if (j.IntOrNull("num_key_value_heads") is int kv) result = result with { NumKeyValueHeads = kv };
        if (j.IntOrNull("head_dim") is int headDim) result = result with { HeadDim = headDim };
        return result;
    }
}
