namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Builds a tokenizer from a Hugging Face tokenizer.json: WordPiece models become <see cref="WordPieceTokenizer"/>,
/// BPE models with a ByteLevel pre-tokenizer or decoder become <see cref="ByteLevelBpeTokenizer"/>, other BPE models
/// (byte_fallback, Prepend/Replace normaliser or Metaspace) become <see cref="SentencePieceBpeTokenizer"/>.
/// Components this library does not implement are reported as <see cref="TokenizerFormatException"/>s naming the field.
/// </summary>
internal static class TokenizerJsonLoader
{
    public static Tokenizer Load(byte[] bytes, string sourceName)
    {
        using var document = JsonLimits.Parse(bytes, sourceName);
        var root = new JsonCursor(document.RootElement, "$", sourceName);
        root.RequireKind(System.Text.Json.JsonValueKind.Object);
        var model = root.Get("model");
        var added = ReadAddedTokens(root.Optional("added_tokens"));
        string type = model.OptionalString("type") ?? InferModelType(model);
        Tokenizer tokenizer = type switch
        {
            "WordPiece" => LoadWordPiece(root, model, added),
            "BPE" when IsByteLevel(root) => LoadByteLevel(root, model, added),
            "BPE" => LoadSentencePiece(root, model, added),
            "Unigram" or "WordLevel" => throw model.Get("type").Error($"model type {type} is not supported (WordPiece and BPE are)"),
            _ => throw model.Error($"unknown model type '{type}'"),
        };
        InferRolesFromConventionalNames(tokenizer, added, sourceName);
        tokenizer.PostProcessor = root.Optional("post_processor") is { } post ? TokenizerJsonComponents.ReadPostProcessor(post, tokenizer) : null;
        if (type == "BPE" && model.OptionalString("unk_token") is { } unknown && tokenizer.TokenToId(unknown) is not null)
        {
            tokenizer.SetSpecialToken(SpecialTokenRole.Unknown, unknown, sourceName, "model.unk_token");
        }
        return tokenizer;
    }

    /// <summary>
    /// tokenizer.json does not say which token is BOS, EOS, ...; tokenizer_config.json does. When loading the JSON alone,
    /// special added tokens with the conventional names get those roles (FromFolder then applies the config files).
    /// </summary>
    private static void InferRolesFromConventionalNames(Tokenizer tokenizer, List<AddedToken> added, string sourceName)
    {
        foreach (var token in added.Where(t => t.Special))
        {
            SpecialTokenRole[] roles = token.Content switch
            {
                "<s>" or "<|begin_of_text|>" => [SpecialTokenRole.BeginningOfSentence],
                "</s>" or "<|end_of_text|>" => [SpecialTokenRole.EndOfSentence],
                "<|endoftext|>" => [SpecialTokenRole.BeginningOfSentence, SpecialTokenRole.EndOfSentence],
                "<unk>" or "[UNK]" => [SpecialTokenRole.Unknown],
                "<pad>" or "[PAD]" => [SpecialTokenRole.Padding],
                "[CLS]" => [SpecialTokenRole.Classification],
                "[SEP]" => [SpecialTokenRole.Separator],
                "<mask>" or "[MASK]" => [SpecialTokenRole.Masking],
                _ => [],
            };
            foreach (var role in roles)
            {
                if (tokenizer.GetSpecialTokenId(role) is null) tokenizer.SetSpecialToken(role, token.Content, sourceName, "added_tokens");
            }
        }
    }

    /// <summary>Older files omit "type"; Hugging Face then recognises the model by its fields.</summary>
    private static string InferModelType(JsonCursor model)
    {
        if (model.Optional("merges") is not null) return "BPE";
        if (model.Optional("max_input_chars_per_word") is not null || model.Optional("continuing_subword_prefix") is not null) return "WordPiece";
        throw model.Error("has no \"type\" and is neither BPE nor WordPiece");
    }

    private static List<AddedToken> ReadAddedTokens(JsonCursor? array)
    {
        var tokens = new List<AddedToken>();
        if (array is not { } items) return tokens;
        foreach (var item in items.Items())
        {
            int id = item.Get("id").GetInt32();
            if (id < 0) throw item.Get("id").Error($"negative id {id}");
            string content = item.Get("content").GetString();
            if (content.Length == 0) throw item.Get("content").Error("empty added token");
            tokens.Add(new AddedToken(content, id, item.OptionalBoolean("special", false), item.OptionalBoolean("lstrip", false),
                item.OptionalBoolean("rstrip", false), item.OptionalBoolean("single_word", false)));
        }
        return tokens;
    }

    private static Tokenizer LoadWordPiece(JsonCursor root, JsonCursor model, List<AddedToken> added)
    {
        var options = new WordPieceOptions
        {
            UnknownToken = model.OptionalString("unk_token") ?? "[UNK]",
            ContinuingSubwordPrefix = model.OptionalString("continuing_subword_prefix") ?? "##",
            MaxInputCharsPerWord = model.OptionalInt32("max_input_chars_per_word") ?? 100,
            LowerCase = false,
            StripAccents = false,
            CleanText = false,
            TokenizeChineseCharacters = false,
            CleanUpTokenizationSpaces = false,
        };
        if (root.Optional("normalizer") is { } normalizer)
        {
            string type = normalizer.Get("type").GetString();
            if (type != "BertNormalizer") throw normalizer.Get("type").Error($"normalizer '{type}' is not supported with WordPiece (BertNormalizer is)");
            options.CleanText = normalizer.OptionalBoolean("clean_text", true);
            options.TokenizeChineseCharacters = normalizer.OptionalBoolean("handle_chinese_chars", true);
            options.LowerCase = normalizer.OptionalBoolean("lowercase", true);
            options.StripAccents = normalizer.Optional("strip_accents")?.GetBoolean();
        }
        if (root.Optional("pre_tokenizer") is { } pre)
        {
            string type = pre.Get("type").GetString();
            if (type != "BertPreTokenizer") throw pre.Get("type").Error($"pre-tokenizer '{type}' is not supported with WordPiece (BertPreTokenizer is)");
        }
        if (root.Optional("decoder") is { } decoder)
        {
            string type = decoder.Get("type").GetString();
            if (type != "WordPiece") throw decoder.Get("type").Error($"decoder '{type}' is not supported with WordPiece");
            string prefix = decoder.OptionalString("prefix") ?? "##";
            if (prefix != options.ContinuingSubwordPrefix) throw decoder.Get("prefix").Error("differs from the model's continuing_subword_prefix");
            options.CleanUpTokenizationSpaces = decoder.OptionalBoolean("cleanup", true);
        }
        var vocabulary = JsonVocabulary.Read(model.Get("vocab").Element, root.Source, "model.vocab");
        return WordPieceTokenizer.Create(vocabulary, added, options, root.Source);
    }

    private static bool IsByteLevel(JsonCursor root)
    {
        static bool Mentions(JsonCursor? component, string listName)
        {
            if (component is not { } c || c.Kind != System.Text.Json.JsonValueKind.Object) return false;
            if (c.OptionalString("type") == "ByteLevel") return true;
            return c.Optional(listName) is { Kind: System.Text.Json.JsonValueKind.Array } list && list.Items().Any(i => Mentions(i, listName));
        }
        return Mentions(root.Optional("pre_tokenizer"), "pretokenizers") || Mentions(root.Optional("decoder"), "decoders");
    }

    private static BpeModel ReadBpeModel(JsonCursor model, string sourceName)
    {
        if (model.Optional("dropout") is { } dropout)
        {
            dropout.RequireKind(System.Text.Json.JsonValueKind.Number);
            if (!dropout.Element.TryGetDouble(out double p) || p != 0) throw dropout.Error("BPE dropout is not supported (encoding would be random)");
        }
        var vocabulary = JsonVocabulary.Read(model.Get("vocab").Element, sourceName, "model.vocab");
        var merges = new List<(string, string)>();
        foreach (var merge in model.Get("merges").Items())
        {
            if (merge.Kind == System.Text.Json.JsonValueKind.Array)
            {
                var parts = merge.Items().ToList();
                if (parts.Count != 2) throw merge.Error($"a merge must have two tokens, got {parts.Count}");
                merges.Add((parts[0].GetString(), parts[1].GetString()));
                continue;
            }
            string[] pair = merge.GetString().Split(' ');
            if (pair.Length != 2 || pair[0].Length == 0 || pair[1].Length == 0) throw merge.Error("a merge must be two tokens separated by one space");
            merges.Add((pair[0], pair[1]));
        }
        return new BpeModel(vocabulary, merges, model.OptionalString("unk_token"), model.OptionalBoolean("fuse_unk", false),
            model.OptionalBoolean("byte_fallback", false), model.OptionalBoolean("ignore_merges", false),
            model.OptionalString("continuing_subword_prefix"), model.OptionalString("end_of_word_suffix"), sourceName, "model.merges");
    }

    private static Tokenizer LoadByteLevel(JsonCursor root, JsonCursor model, List<AddedToken> added)
    {
        if (root.Optional("normalizer") is { } normalizer)
        {
            throw normalizer.Error("normalizers are not supported with byte-level BPE");
        }
        var (preTokenizer, addPrefixSpace) = root.Optional("pre_tokenizer") is { } pre
            ? TokenizerJsonComponents.ReadByteLevelPreTokenizer(pre)
            : (new WholeTextPreTokenizer(), false);
        var decoder = root.Optional("decoder") is { } d ? TokenizerJsonComponents.ReadDecoder(d) : [new ByteLevelDecoderStep()];
        var bpe = ReadBpeModel(model, root.Source);
        return ByteLevelBpeTokenizer.Create(bpe, added, preTokenizer, addPrefixSpace, decoder, root.Source);
    }

    private static Tokenizer LoadSentencePiece(JsonCursor root, JsonCursor model, List<AddedToken> added)
    {
        var normalizer = root.Optional("normalizer") is { } n ? TokenizerJsonComponents.ReadNormalizer(n) : [];
        var metaspace = root.Optional("pre_tokenizer") is { } pre ? TokenizerJsonComponents.ReadMetaspace(pre) : null;
        var decoder = root.Optional("decoder") is { } d ? TokenizerJsonComponents.ReadDecoder(d) : [];
        var bpe = ReadBpeModel(model, root.Source);
        return SentencePieceBpeTokenizer.Create(bpe, added, normalizer, metaspace, decoder, root.Source);
    }
}
