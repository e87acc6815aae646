using System.Globalization;
using System.Text.Json;

namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>
/// A Hugging Face <c>config.json</c> as a typed record: the fields every model shares (labels, special token ids,
/// vocabulary, embedding tying) with the defaults of transformers' <c>PretrainedConfig</c>; subclasses add the
/// architecture. <see cref="Load"/> reads a file or model folder and dispatches on <c>model_type</c>.
/// </summary>
/// <remarks>
/// Records, so a variant is one expression away: <c>config with { NumLabels = 3 }</c>. Setting
/// <see cref="NumLabels"/> to a count that differs from <see cref="Id2Label"/> resets the labels to
/// "LABEL_0".."LABEL_{n-1}", as transformers does.
/// </remarks>
public abstract record ModelConfig
{
    private static readonly string[] ProblemTypes = ["regression", "single_label_classification", "multi_label_classification"];

    private int _numLabels = 2;
    private IReadOnlyDictionary<int, string>? _id2Label;
    private IReadOnlyDictionary<string, int>? _label2Id;

    /// <summary>The <c>model_type</c> string, e.g. "bert", "llama", "mistral".</summary>
    public string ModelType { get; init; } = "";

    /// <summary>The file this config was read from, or null when built in code.</summary>
    public string? SourcePath { get; init; }

    /// <summary><c>architectures</c>, e.g. ["LlamaForCausalLM"]; empty when absent.</summary>
    public IReadOnlyList<string> Architectures { get; init; } = [];

    /// <summary><c>vocab_size</c>: rows of the token embedding.</summary>
    public int VocabSize { get; init; }

    /// <summary>Width of the hidden states (<c>hidden_size</c>; DistilBERT's <c>dim</c>, GPT-2's <c>n_embd</c>).</summary>
    public int HiddenSize { get; init; }

    /// <summary>Number of transformer blocks (<c>num_hidden_layers</c>, <c>n_layers</c>, <c>n_layer</c>).</summary>
    public int NumHiddenLayers { get; init; }

    /// <summary>Number of attention (query) heads (<c>num_attention_heads</c>, <c>n_heads</c>, <c>n_head</c>).</summary>
    public int NumAttentionHeads { get; init; }

    /// <summary><c>num_labels</c>: classes of a classification head (default 2, or the size of <see cref="Id2Label"/>).</summary>
    public int NumLabels
    {
        get => _id2Label?.Count ?? _numLabels;
        init
        {
            if (value < 0) throw new ArgumentOutOfRangeException(nameof(value), value, "num_labels must be non-negative");
            _numLabels = value;
            if (_id2Label is not null && _id2Label.Count != value) _id2Label = null;
        }
    }

    /// <summary><c>id2label</c>; defaults to LABEL_0 … LABEL_{NumLabels-1}.</summary>
    public IReadOnlyDictionary<int, string> Id2Label
    {
        get => _id2Label ?? Enumerable.Range(0, _numLabels).ToDictionary(i => i, i => "LABEL_" + i.ToString(CultureInfo.InvariantCulture));
        init => _id2Label = value;
    }

    /// <summary><c>label2id</c>; defaults to the inverse of <see cref="Id2Label"/>.</summary>
    public IReadOnlyDictionary<string, int> Label2Id
    {
        get => _label2Id is not null && _label2Id.Count == NumLabels ? _label2Id : Id2Label.ToDictionary(p => p.Value, p => p.Key);
        init => _label2Id = value;
    }

    /// <summary><c>problem_type</c>: null, "regression", "single_label_classification" or "multi_label_classification".</summary>
    public string? ProblemType { get; init; }

    /// <summary><c>pad_token_id</c> (model-specific default).</summary>
    public int? PadTokenId { get; init; }

    /// <summary><c>bos_token_id</c> (model-specific default).</summary>
    public int? BosTokenId { get; init; }

    /// <summary><c>eos_token_id</c>, which may list several ids (model-specific default).</summary>
    public IReadOnlyList<int> EosTokenIds { get; init; } = [];

    /// <summary>The first end-of-sequence id, or null.</summary>
    public int? EosTokenId => EosTokenIds.Count > 0 ? EosTokenIds[0] : null;

    /// <summary><c>tie_word_embeddings</c>: output projection shares the input embedding (default true, as in PretrainedConfig).</summary>
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary><c>torch_dtype</c> (or <c>dtype</c>) the checkpoint was saved in, e.g. "float32"; null when absent.</summary>
    public string? TorchDtype { get; init; }

    /// <summary>The <c>model_type</c> values <see cref="Load"/> understands.</summary>
    public static IReadOnlyList<string> SupportedModelTypes { get; } =
        ["bert", "roberta", "distilbert", "llama", "mistral", "qwen2", "gpt2", "gpt_neox"];

    /// <summary>
    /// Reads <paramref name="folderOrFile"/> (a model folder holding config.json, or the file itself) into the
    /// config type for its <c>model_type</c>. Throws <see cref="ModelConfigException"/> naming the file and field
    /// for malformed JSON, wrongly typed fields, inconsistent sizes or an unsupported <c>model_type</c>.
    /// </summary>
    public static ModelConfig Load(string folderOrFile)
    {
        ArgumentNullException.ThrowIfNull(folderOrFile);
        string path = Directory.Exists(folderOrFile) ? System.IO.Path.Combine(folderOrFile, "config.json") : folderOrFile;
        if (!File.Exists(path)) throw new FileNotFoundException($"model config not found: {path}", path);
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="sourceName"/> is used in error messages.</summary>
    public static ModelConfig Parse(string json, string sourceName = "config.json")
    {
        ArgumentNullException.ThrowIfNull(json);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(json, new JsonDocumentOptions { AllowTrailingCommas = false, MaxDepth = 32 });
        }
        catch (JsonException e)
        {
            throw new ModelConfigException(sourceName, null, $"not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelConfigException(sourceName, null, "must be a JSON object");
            var j = new ConfigJson(document.RootElement, sourceName);
            string modelType = j.StringOrNull("model_type") ?? InferModelType(j, sourceName)
                ?? throw new ModelConfigException(sourceName, "model_type",
                    $"is missing and cannot be inferred from 'architectures' or the path; supported: {string.Join(", ", SupportedModelTypes)}");
            ModelConfig config = modelType switch
            {
                "bert" => BertConfig.Read(j),
                "roberta" => RobertaConfig.Read(j),
                "distilbert" => DistilBertConfig.Read(j),
                "llama" or "mistral" or "qwen2" => LlamaConfig.Read(j, modelType),
                "gpt2" => Gpt2Config.Read(j),
                "gpt_neox" => GptNeoXConfig.Read(j),
                _ => throw new ModelConfigException(sourceName, "model_type",
                    $"'{modelType}' is not supported; supported: {string.Join(", ", SupportedModelTypes)}"),
            };
            config = config.WithCommonFields(j);
            config.Validate(sourceName);
            return config;
        }
    }

    /// <summary>
    /// For old configs without <c>model_type</c> (e.g. prajjwal1/bert-tiny): the architecture class name's prefix, else
    /// — as transformers' AutoConfig does — the longest supported type name contained in the path.
    /// </summary>
    private static string? InferModelType(ConfigJson j, string sourceName)
    {
        (string Prefix, string Type)[] byArchitecture =
        [
            ("DistilBert", "distilbert"), ("Roberta", "roberta"), ("Bert", "bert"), ("Llama", "llama"), ("Mistral", "mistral"),
            ("Qwen2", "qwen2"), ("GPTNeoX", "gpt_neox"), ("GPT2", "gpt2"),
        ];
        foreach (string architecture in j.StringList("architectures"))
        {
            foreach (var (prefix, type) in byArchitecture)
            {
                if (architecture.StartsWith(prefix, StringComparison.Ordinal)) return type;
            }
        }
        string lowered = sourceName.Replace('\\', '/').ToLowerInvariant();
        return SupportedModelTypes.OrderByDescending(t => t.Length).FirstOrDefault(t => lowered.Contains(t, StringComparison.Ordinal));
    }

    /// <summary>Checks sizes and label fields; throws <see cref="ModelConfigException"/> naming the field.</summary>
    public virtual void Validate(string sourceName)
    {
        RequirePositive(sourceName, "vocab_size", VocabSize);
        RequirePositive(sourceName, "hidden_size", HiddenSize);
        RequirePositive(sourceName, "num_hidden_layers", NumHiddenLayers);
        RequirePositive(sourceName, "num_attention_heads", NumAttentionHeads);
        if (ProblemType is not null && !ProblemTypes.Contains(ProblemType))
            throw new ModelConfigException(sourceName, "problem_type", $"'{ProblemType}' is not one of {string.Join(", ", ProblemTypes)}");
        foreach (var (id, _) in Id2Label)
        {
            if (id < 0 || id >= NumLabels) throw new ModelConfigException(sourceName, "id2label", $"label id {id} is outside 0..{NumLabels - 1}");
        }
    }

    /// <summary>Throws unless <paramref name="value"/> &gt; 0.</summary>
    protected static void RequirePositive(string sourceName, string field, int value)
    {
        if (value <= 0) throw new ModelConfigException(sourceName, field, $"must be positive, found {value}");
    }

    /// <summary>Throws unless <paramref name="numerator"/> is a multiple of <paramref name="denominator"/>.</summary>
    protected static void RequireDivisible(string sourceName, string field, int numerator, string denominatorField, int denominator)
    {
        if (denominator > 0 && numerator % denominator != 0)
            throw new ModelConfigException(sourceName, field, $"{numerator} is not a multiple of {denominatorField} = {denominator}");
    }

    /// <summary>The shared PretrainedConfig fields; token-id and tying defaults are already set by the subclass reader.</summary>
    private ModelConfig WithCommonFields(ConfigJson j)
    {
        var id2Label = j.IntKeyedStrings("id2label");
        int numLabels = id2Label?.Count ?? j.Int("num_labels", 2);
        return this with
        {
            SourcePath = j.Path,
            Architectures = j.StringList("architectures"),
            NumLabels = numLabels,
            Id2Label = id2Label ?? Enumerable.Range(0, numLabels).ToDictionary(i => i, i => "LABEL_" + i.ToString(CultureInfo.InvariantCulture)),
            Label2Id = j.StringKeyedInts("label2id") ?? id2Label?.ToDictionary(p => p.Value, p => p.Key) ?? [],
            ProblemType = j.StringOrNull("problem_type"),
            // An explicit JSON null means "no such token", overriding the model's default id.
            PadTokenId = j.Present("pad_token_id") ? j.IntOrNull("pad_token_id") : PadTokenId,
            BosTokenId = j.Present("bos_token_id") ? j.IntOrNull("bos_token_id") : BosTokenId,
            EosTokenIds = j.Present("eos_token_id") ? j.IntOrIntList("eos_token_id", []) : EosTokenIds,
            TieWordEmbeddings = j.Bool("tie_word_embeddings", TieWordEmbeddings),
            TorchDtype = j.StringOrNull("torch_dtype") ?? j.StringOrNull("dtype"),
        };
    }
}
