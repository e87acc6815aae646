using System.Text.Json;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// What tokenizer_config.json and special_tokens_map.json say: special-token roles (bos_token, eos_token, ... as a
/// string or an AddedToken object), add_bos_token/add_eos_token (Llama), add_prefix_space (RoBERTa), do_lower_case
/// (BERT), clean_up_tokenization_spaces and model_max_length. special_tokens_map.json wins over tokenizer_config.json
/// for roles, as in transformers.
/// </summary>
internal sealed class TokenizerConfig
{
    private static readonly (string Key, SpecialTokenRole Role)[] s_roleKeys =
    [
        ("bos_token", SpecialTokenRole.BeginningOfSentence), ("eos_token", SpecialTokenRole.EndOfSentence),
        ("unk_token", SpecialTokenRole.Unknown), ("pad_token", SpecialTokenRole.Padding),
        ("cls_token", SpecialTokenRole.Classification), ("sep_token", SpecialTokenRole.Separator),
        ("mask_token", SpecialTokenRole.Masking),
    ];

    /// <summary>Role → (token, file that named it, key).</summary>
    public Dictionary<SpecialTokenRole, (string Token, string Source, string Key)> Roles { get; } = new();

    public List<string> AdditionalSpecialTokens { get; } = new();

    public bool? AddBosToken { get; private set; }

    public bool? AddEosToken { get; private set; }

    public bool? AddPrefixSpace { get; private set; }

    public bool? DoLowerCase { get; private set; }

    public bool? CleanUpTokenizationSpaces { get; private set; }

    public string? TokenizerClass { get; private set; }

    /// <summary>model_max_length, or null when absent or transformers' "unset" sentinel (about 1e30).</summary>
    public int? ModelMaxLength { get; private set; }

    /// <summary>Reads whichever of the two files exist in <paramref name="folder"/>.</summary>
    public static TokenizerConfig Read(string folder)
    {
        var config = new TokenizerConfig();
        string configPath = Path.Combine(folder, "tokenizer_config.json");
        if (File.Exists(configPath)) config.ReadFile(configPath, isConfig: true);
        string mapPath = Path.Combine(folder, "special_tokens_map.json");
        if (File.Exists(mapPath)) config.ReadFile(mapPath, isConfig: false);
        return config;
    }

    private void ReadFile(string path, bool isConfig)
    {
        using var document = JsonLimits.Parse(File.ReadAllBytes(path), path);
        var root = new JsonCursor(document.RootElement, "$", path);
        root.RequireKind(JsonValueKind.Object);
        foreach (var (key, role) in s_roleKeys)
        {
            if (root.Optional(key) is { } value) Roles[role] = (TokenText(value), path, key);
        }
        if (root.Optional("additional_special_tokens") is { } extra)
        {
            foreach (var item in extra.Items()) AdditionalSpecialTokens.Add(TokenText(item));
        }
        if (!isConfig) return;
        AddBosToken = root.Optional("add_bos_token")?.GetBoolean();
        AddEosToken = root.Optional("add_eos_token")?.GetBoolean();
        AddPrefixSpace = root.Optional("add_prefix_space")?.GetBoolean();
        DoLowerCase = root.Optional("do_lower_case")?.GetBoolean();
        CleanUpTokenizationSpaces = root.Optional("clean_up_tokenization_spaces")?.GetBoolean();
        TokenizerClass = root.OptionalString("tokenizer_class");
        if (root.Optional("model_max_length") is { } max)
        {
            max.RequireKind(JsonValueKind.Number);
            if (max.Element.TryGetDouble(out double value) && value >= 1 && value < int.MaxValue)
            {
                ModelMaxLength = (int)value;
            }
        }
    }

    /// <summary>A special token given as "text" or as {"content": "text", ...}.</summary>
    private static string TokenText(JsonCursor value) =>
        value.Kind == JsonValueKind.Object ? value.Get("content").GetString() : value.GetString();

    /// <summary>Gives every configured role to its token (which must be in the vocabulary).</summary>
    public void ApplyRoles(Tokenizer tokenizer)
    {
        foreach (var (role, (token, source, key)) in Roles) tokenizer.SetSpecialToken(role, token, source, key);
        if (ModelMaxLength is int max) tokenizer.ModelMaxLength = max;
    }
}
