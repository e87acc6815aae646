namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>
/// BERT encoder (<c>model_type</c> "bert"), with the defaults of transformers' <c>BertConfig</c> (bert-base-uncased).
/// The BERT miniatures published with google-research/bert are available as <see cref="Tiny"/>, <see cref="Mini"/>,
/// <see cref="Small"/>, <see cref="Medium"/> and <see cref="Base"/>.
/// </summary>
public record BertConfig : ModelConfig
{
    /// <summary>bert-base defaults: 30522 tokens, hidden 768, 12 layers, 12 heads, intermediate 3072.</summary>
    public BertConfig()
    {
        ModelType = "bert";
        VocabSize = 30522;
        HiddenSize = 768;
        NumHiddenLayers = 12;
        NumAttentionHeads = 12;
        PadTokenId = 0;
    }

    /// <summary>BERT-Tiny (L=2, H=128, A=2, intermediate 512).</summary>
    public static BertConfig Tiny => Miniature(2, 128, 2);

    /// <summary>BERT-Mini (L=4, H=256, A=4, intermediate 1024).</summary>
    public static BertConfig Mini => Miniature(4, 256, 4);

    /// <summary>BERT-Small (L=4, H=512, A=8, intermediate 2048).</summary>
    public static BertConfig Small => Miniature(4, 512, 8);

    /// <summary>BERT-Medium (L=8, H=512, A=8, intermediate 2048).</summary>
    public static BertConfig Medium => Miniature(8, 512, 8);

    /// <summary>BERT-Base (L=12, H=768, A=12, intermediate 3072).</summary>
    public static BertConfig Base => new();

    /// <summary><c>intermediate_size</c>: width of the feed-forward layer.</summary>
    public int IntermediateSize { get; init; } = 3072;

    /// <summary><c>hidden_act</c>: "gelu" (erf), "gelu_new", "relu", ...</summary>
    public string HiddenAct { get; init; } = "gelu";

    /// <summary><c>hidden_dropout_prob</c>.</summary>
    public double HiddenDropoutProb { get; init; } = 0.1;

    /// <summary><c>attention_probs_dropout_prob</c>.</summary>
    public double AttentionProbsDropoutProb { get; init; } = 0.1;

    /// <summary><c>max_position_embeddings</c>: rows of the learned position embedding.</summary>
    public int MaxPositionEmbeddings { get; init; } = 512;

    /// <summary><c>type_vocab_size</c>: rows of the token-type (segment) embedding.</summary>
    public int TypeVocabSize { get; init; } = 2;

    /// <summary><c>initializer_range</c>: std of the normal initialiser.</summary>
    public double InitializerRange { get; init; } = 0.02;

    /// <summary><c>layer_norm_eps</c>.</summary>
    public double LayerNormEps { get; init; } = 1e-12;

    /// <summary><c>position_embedding_type</c>: "absolute" (others are not used by the supported checkpoints).</summary>
    public string PositionEmbeddingType { get; init; } = "absolute";

    /// <summary><c>classifier_dropout</c>; null means use <see cref="HiddenDropoutProb"/>.</summary>
    public double? ClassifierDropout { get; init; }

    /// <summary>Size of one attention head: hidden_size / num_attention_heads.</summary>
    public int HeadDim => HiddenSize / NumAttentionHeads;

    /// <inheritdoc />
    public override void Validate(string sourceName)
    {
        base.Validate(sourceName);
        RequireDivisible(sourceName, "hidden_size", HiddenSize, "num_attention_heads", NumAttentionHeads);
        RequirePositive(sourceName, "intermediate_size", IntermediateSize);
        RequirePositive(sourceName, "max_position_embeddings", MaxPositionEmbeddings);
    }

    internal static BertConfig Read(ConfigJson j) => ReadInto(new BertConfig(), j);

    /// <summary>Reads the BERT fields over <paramref name="defaults"/> (shared with RoBERTa, which only changes defaults).</summary>
    private protected static T ReadInto<T>(T defaults, ConfigJson j) where T : BertConfig => defaults with
    {
        VocabSize = j.Int("vocab_size", defaults.VocabSize),
        HiddenSize = j.Int("hidden_size", defaults.HiddenSize),
        NumHiddenLayers = j.Int("num_hidden_layers", defaults.NumHiddenLayers),
        NumAttentionHeads = j.Int("num_attention_heads", defaults.NumAttentionHeads),
        IntermediateSize = j.Int("intermediate_size", defaults.IntermediateSize),
        HiddenAct = j.String("hidden_act", defaults.HiddenAct),
        HiddenDropoutProb = j.Double("hidden_dropout_prob", defaults.HiddenDropoutProb),
        AttentionProbsDropoutProb = j.Double("attention_probs_dropout_prob", defaults.AttentionProbsDropoutProb),
        MaxPositionEmbeddings = j.Int("max_position_embeddings", defaults.MaxPositionEmbeddings),
        TypeVocabSize = j.Int("type_vocab_size", defaults.TypeVocabSize),
        InitializerRange = j.Double("initializer_range", defaults.InitializerRange),
        LayerNormEps = j.Double("layer_norm_eps", defaults.LayerNormEps),
        PositionEmbeddingType = j.String("position_embedding_type", defaults.PositionEmbeddingType),
        ClassifierDropout = j.DoubleOrNull("classifier_dropout"),
    };

    private static BertConfig Miniature(int layers, int hidden, int heads) => new()
    {
        NumHiddenLayers = layers,
        HiddenSize = hidden,
        NumAttentionHeads = heads,
        IntermediateSize = 4 * hidden,
    };
}

/// <summary>
/// RoBERTa encoder (<c>model_type</c> "roberta"): BERT's architecture with transformers' <c>RobertaConfig</c>
/// defaults (50265 tokens, pad 1, bos 0, eos 2). Position ids start after the padding index, so checkpoints use
/// <c>max_position_embeddings</c> = 514 for 512 tokens.
/// </summary>
public sealed record RobertaConfig : BertConfig
{
    /// <summary>roberta-base defaults.</summary>
    public RobertaConfig()
    {
        ModelType = "roberta";
        VocabSize = 50265;
        PadTokenId = 1;
        BosTokenId = 0;
        EosTokenIds = [2];
    }

    internal static new RobertaConfig Read(ConfigJson j) => ReadInto(new RobertaConfig(), j);
}
