namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>Readers for the tokenizer.json components (normalizer, pre_tokenizer, decoder, post_processor).</summary>
internal static class TokenizerJsonComponents
{
    /// <summary>
    /// TemplateProcessing, BertProcessing or RobertaProcessing (possibly inside a Sequence next to ByteLevel, which
    /// only trims offsets); null when the processor adds no special tokens.
    /// </summary>
    public static TemplatePostProcessor? ReadPostProcessor(JsonCursor processor, Tokenizer tokenizer)
    {
        string type = processor.Get("type").GetString();
        switch (type)
        {
            case "ByteLevel":
                return null;
            case "Sequence":
            {
                TemplatePostProcessor? found = null;
                foreach (var part in processor.Get("processors").Items())
                {
                    if (ReadPostProcessor(part, tokenizer) is not { } template) continue;
                    if (found is not null) throw part.Error("more than one special-token post-processor in a Sequence");
                    found = template;
                }
                return found;
            }
            case "BertProcessing":
                return TemplatePostProcessor.Bert(TokenAndId(processor.Get("cls"), tokenizer), TokenAndId(processor.Get("sep"), tokenizer));
            case "RobertaProcessing":
                return TemplatePostProcessor.Roberta(TokenAndId(processor.Get("cls"), tokenizer), TokenAndId(processor.Get("sep"), tokenizer));
            case "TemplateProcessing":
                return ReadTemplate(processor, tokenizer);
            default:
                throw processor.Get("type").Error($"post-processor '{type}' is not supported");
        }
    }

    /// <summary>A ["token", id] pair; the id must be that token's.</summary>
    private static int TokenAndId(JsonCursor pair, Tokenizer tokenizer)
    {
        var parts = pair.Items().ToList();
        if (parts.Count != 2) throw pair.Error("expected [token, id]");
        string token = parts[0].GetString();
        int id = parts[1].GetInt32();
        if (tokenizer.TokenToId(token) != id) throw pair.Error($"'{TokenVocabulary.Shorten(token)}' does not have id {id} in the vocabulary");
        return id;
    }

    private static TemplatePostProcessor ReadTemplate(JsonCursor processor, Tokenizer tokenizer)
    {
        var specials = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (processor.Optional("special_tokens") is { } map)
        {
            foreach (var (name, entry) in map.Members())
            {
                int[] ids = [.. entry.Get("ids").Items().Select(i => i.GetInt32())];
                foreach (int id in ids)
                {
                    if (tokenizer.IdToToken(id) is null) throw entry.Get("ids").Error($"id {id} is not in the vocabulary");
                }
                specials[name] = ids;
            }
        }
        List<TemplatePiece> Read(JsonCursor list)
        {
            var pieces = new List<TemplatePiece>();
            foreach (var item in list.Items())
            {
                if (item.Optional("SpecialToken") is { } special)
                {
                    string name = special.Get("id").GetString();
                    if (!specials.TryGetValue(name, out var ids)) throw special.Get("id").Error($"'{name}' is not listed in special_tokens");
                    pieces.Add(TemplatePiece.Special(special.OptionalInt32("type_id") ?? 0, ids));
                }
                else if (item.Optional("Sequence") is { } sequence)
                {
                    string id = sequence.Get("id").GetString();
                    int index = id switch { "A" => 0, "B" => 1, _ => throw sequence.Get("id").Error($"sequence id must be A or B, got '{id}'") };
                    pieces.Add(TemplatePiece.Sequence(index, sequence.OptionalInt32("type_id") ?? 0));
                }
                else
                {
                    throw item.Error("expected a SpecialToken or a Sequence piece");
                }
            }
            return pieces;
        }
        var single = Read(processor.Get("single"));
        var pair = Read(processor.Get("pair"));
        try
        {
            return new TemplatePostProcessor(single, pair);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException(processor.Source, processor.Path, e.Message, e);
        }
    }

    /// <summary>ByteLevel (GPT-2 regex unless use_regex is false), Split (Isolated regex), or a Sequence of them.</summary>
    public static (PreTokenizer PreTokenizer, bool AddPrefixSpace) ReadByteLevelPreTokenizer(JsonCursor pre)
    {
        string type = pre.Get("type").GetString();
        switch (type)
        {
            case "ByteLevel":
                return (pre.OptionalBoolean("use_regex", true) ? new Gpt2PreTokenizer() : new WholeTextPreTokenizer(), pre.OptionalBoolean("add_prefix_space", true));
            case "Split":
                return (ReadSplit(pre), false);
            case "Sequence":
            {
                var parts = new List<PreTokenizer>();
                foreach (var part in pre.Get("pretokenizers").Items())
                {
                    var (splitter, prefix) = ReadByteLevelPreTokenizer(part);
                    if (prefix) throw part.Error("add_prefix_space inside a Sequence is not supported");
                    if (splitter is not WholeTextPreTokenizer) parts.Add(splitter);
                }
                return (parts.Count == 1 ? parts[0] : new SequencePreTokenizer(parts), false);
            }
            default:
                throw pre.Get("type").Error($"pre-tokenizer '{type}' is not supported with byte-level BPE");
        }
    }

    private static PreTokenizer ReadSplit(JsonCursor split)
    {
        string behavior = split.OptionalString("behavior") ?? "Isolated";
        if (behavior != "Isolated") throw split.Get("behavior").Error($"Split behavior '{behavior}' is not supported (Isolated is)");
        if (split.OptionalBoolean("invert", false)) throw split.Get("invert").Error("inverted Split is not supported");
        var pattern = split.Get("pattern");
        if (pattern.OptionalString("Regex") is { } regex)
        {
            try
            {
                return PreTokenizer.ForPattern(regex);
            }
            catch (ArgumentException e)
            {
                throw new TokenizerFormatException(pattern.Source, pattern.Path + ".Regex", "not a valid regular expression: " + e.Message, e);
            }
        }
        if (pattern.OptionalString("String") is { Length: > 0 } literal)
        {
            return new RegexPreTokenizer(System.Text.RegularExpressions.Regex.Escape(literal));
        }
        throw pattern.Error("expected {\"Regex\": ...} or a non-empty {\"String\": ...}");
    }

    /// <summary>Prepend, Replace (literal pattern) and Sequences of them.</summary>
    public static List<NormalizerStep> ReadNormalizer(JsonCursor normalizer)
    {
        var steps = new List<NormalizerStep>();
        string type = normalizer.Get("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var part in normalizer.Get("normalizers").Items()) steps.AddRange(ReadNormalizer(part));
                break;
            case "Prepend":
                steps.Add(new PrependStep(normalizer.Get("prepend").GetString()));
                break;
            case "Replace":
                var (pattern, content) = ReadReplace(normalizer);
                steps.Add(new ReplaceStep(pattern, content));
                break;
            default:
                throw normalizer.Get("type").Error($"normalizer '{type}' is not supported (Prepend, Replace and Sequence are)");
        }
        return steps;
    }

    private static (string Pattern, string Content) ReadReplace(JsonCursor replace)
    {
        var pattern = replace.Get("pattern");
        string literal = pattern.OptionalString("String") ?? throw pattern.Error("only {\"String\": ...} patterns are supported");
        if (literal.Length == 0) throw pattern.Get("String").Error("empty pattern");
        return (literal, replace.Get("content").GetString());
    }

    /// <summary>A Metaspace pre-tokenizer (the SentencePiece-compatible one); null for none.</summary>
    public static MetaspaceSettings? ReadMetaspace(JsonCursor pre)
    {
        string type = pre.Get("type").GetString();
        if (type != "Metaspace") throw pre.Get("type").Error($"pre-tokenizer '{type}' is not supported here (Metaspace is)");
        string replacement = pre.OptionalString("replacement") ?? "\u2581";
        if (replacement.Length != 1) throw pre.Get("replacement").Error("must be one character");
        string scheme = pre.OptionalString("prepend_scheme") ?? (pre.OptionalBoolean("add_prefix_space", true) ? "always" : "never");
        var prepend = scheme switch
        {
            "always" => MetaspacePrepend.Always,
            "first" => MetaspacePrepend.First,
            "never" => MetaspacePrepend.Never,
            _ => throw pre.Get("prepend_scheme").Error($"unknown prepend_scheme '{scheme}'"),
        };
        return new MetaspaceSettings(replacement[0], prepend, pre.OptionalBoolean("split", true));
    }

    /// <summary>Replace, ByteFallback, Fuse, Strip, Metaspace, ByteLevel and Sequences of them.</summary>
    public static List<DecoderStep> ReadDecoder(JsonCursor decoder)
    {
        var steps = new List<DecoderStep>();
        string type = decoder.Get("type").GetString();
        switch (type)
        {
            case "Sequence":
                foreach (var part in decoder.Get("decoders").Items()) steps.AddRange(ReadDecoder(part));
                break;
            case "Replace":
                var (pattern, content) = ReadReplace(decoder);
                steps.Add(new ReplaceDecoderStep(pattern, content));
                break;
            case "ByteFallback":
                steps.Add(new ByteFallbackDecoderStep());
                break;
            case "Fuse":
                steps.Add(new FuseDecoderStep());
                break;
            case "Strip":
                string strip = decoder.Get("content").GetString();
                if (strip.Length != 1) throw decoder.Get("content").Error("must be one character");
                int start = decoder.OptionalInt32("start") ?? 0, stop = decoder.OptionalInt32("stop") ?? 0;
                if (start < 0 || stop < 0) throw decoder.Error("start and stop must not be negative");
                steps.Add(new StripDecoderStep(strip[0], start, stop));
                break;
            case "Metaspace":
                var settings = ReadMetaspace(decoder)!;
                steps.Add(new MetaspaceDecoderStep(settings.Replacement, settings.Prepend != MetaspacePrepend.Never));
                break;
            case "ByteLevel":
                steps.Add(new ByteLevelDecoderStep());
                break;
            default:
                throw decoder.Get("type").Error($"decoder '{type}' is not supported");
        }
        return steps;
    }
}
