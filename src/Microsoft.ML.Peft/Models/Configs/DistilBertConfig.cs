namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>
/// DistilBERT encoder (<c>model_type</c> "distilbert") with transformers' <c>DistilBertConfig</c> field names and
/// defaults (distilbert-base-uncased). <see cref="Dim"/>, <see cref="NLayers"/> and <see cref="NHeads"/> are the
/// same values as the common <see cref="ModelConfig.HiddenSize"/>, <see cref="ModelConfig.NumHiddenLayers"/>,
/// <see cref="ModelConfig.NumAttentionHeads"/> (transformers' attribute_map).
/// </summary>
public sealed record DistilBertConfig : ModelConfig
{
    /// <summary>distilbert-base defaults: 30522 tokens, dim 768, 6 layers, 12 heads, hidden_dim 3072.</summary>
    public DistilBertConfig()
    {
        ModelType = "distilbert";
        VocabSize = 30522;
        HiddenSize = 768;
        NumHiddenLayers = 6;
        NumAttentionHeads = 12;
        PadTokenId = 0;
    }

    /// <summary><c>dim</c> (= hidden size).</summary>
    public int Dim { get => HiddenSize; init => HiddenSize = value; }

    /// <summary><c>n_layers</c>.</summary>
    public int NLayers { get => NumHiddenLayers; init => NumHiddenLayers = value; }

    /// <summary><c>n_heads</c>.</summary>
    public int NHeads { get => NumAttentionHeads; init => NumAttentionHeads = value; }

    /// <summary><c>hidden_dim</c>: width of the feed-forward layer.</summary>
    public int HiddenDim { get; init; } = 3072;

    /// <summary><c>max_position_embeddings</c>.</summary>
    public int MaxPositionEmbeddings { get; init; } = 512;

    /// <summary><c>sinusoidal_pos_embds</c>: fixed sinusoidal instead of learned position embeddings.</summary>
    public bool SinusoidalPosEmbds { get; init; }

    /// <summary><c>dropout</c>.</summary>
    public double Dropout { get; init; } = 0.1;

    /// <summary><c>attention_dropout</c>.</summary>
    public double AttentionDropout { get; init; } = 0.1;

    /// <summary><c>activation</c>: "gelu", "relu", ...</summary>
    public string Activation { get; init; } = "gelu";

    /// <summary><c>initializer_range</c>.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary><c>qa_dropout</c>.</summary>
    public double QaDropout { get; init; } = 0.1;

    /// <summary><c>seq_classif_dropout</c>: dropout before the sequence-classification head.</summary>
    public double SeqClassifDropout { get; init; } = 0.2;

    /// <summary>Size of one attention head.</summary>
    public int HeadDim => Dim / NHeads;

    /// <inheritdoc />
    public override void Validate(string sourceName)
    {
        base.Validate(sourceName);
        RequireDivisible(sourceName, "dim", Dim, "n_heads", NHeads);
        RequirePositive(sourceName, "hidden_dim", HiddenDim);
    }

    internal static DistilBertConfig Read(ConfigJson j)
    {
        var d = new DistilBertConfig();
        return d with
        {
            VocabSize = j.Int("vocab_size", d.VocabSize),
            MaxPositionEmbeddings = j.Int("max_position_embeddings", d.MaxPositionEmbeddings),
            SinusoidalPosEmbds = j.Bool("sinusoidal_pos_embds", d.SinusoidalPosEmbds),
            NLayers = j.Int("n_layers", d.NLayers),
            NHeads = j.Int("n_heads", d.NHeads),
            Dim = j.Int("dim", d.Dim),
            HiddenDim = j.Int("hidden_dim", d.HiddenDim),
            Dropout = j.Double("dropout", d.Dropout),
            AttentionDropout = j.Double("attention_dropout", d.AttentionDropout),
            Activation = j.String("activation", d.Activation),
            InitializerRange = j.Double("initializer_range", d.InitializerRange),
            QaDropout = j.Double("qa_dropout", d.QaDropout),
            SeqClassifDropout = j.Double("seq_classif_dropout", d.SeqClassifDropout),
        };
    }
}
