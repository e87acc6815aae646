namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Loads the tokenizer of a Hugging Face model folder, choosing the implementation from the files present:
/// tokenizer.json (WordPiece, byte-level BPE or SentencePiece-style BPE), else vocab.json + merges.txt (byte-level
/// BPE), else tokenizer.model (SentencePiece BPE), else vocab.txt (WordPiece). Special-token roles, Llama's
/// add_bos_token/add_eos_token, RoBERTa's add_prefix_space, BERT's do_lower_case and model_max_length come from
/// tokenizer_config.json and special_tokens_map.json when present.
/// </summary>
public static class TokenizerLoader
{
    /// <summary>Loads the tokenizer stored in <paramref name="folder"/>.</summary>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">The folder holds none of the recognised tokenizer files.</exception>
    /// <exception cref="TokenizerFormatException">A file is malformed or describes something unsupported.</exception>
    public static Tokenizer FromFolder(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"Tokenizer folder not found: {folder}");
        var config = TokenizerConfig.Read(folder);
        string File(string name) => Path.Combine(folder, name);

        Tokenizer tokenizer;
        if (System.IO.File.Exists(File("tokenizer.json")))
        {
            tokenizer = FromTokenizerJson(File("tokenizer.json"));
        }
        else if (System.IO.File.Exists(File("vocab.json")) && System.IO.File.Exists(File("merges.txt")))
        {
            var options = new ByteLevelBpeOptions
            {
                AddPrefixSpace = config.AddPrefixSpace ?? config.TokenizerClass?.StartsWith("Roberta", StringComparison.Ordinal) ?? false,
                SpecialTokens = [.. config.Roles.Values.Select(r => r.Token).Concat(config.AdditionalSpecialTokens).Distinct()],
            };
            tokenizer = ByteLevelBpeTokenizer.Create(File("vocab.json"), File("merges.txt"), options);
            tokenizer.PostProcessor = RobertaTemplate(tokenizer, config);
        }
        else if (System.IO.File.Exists(File("tokenizer.model")))
        {
            tokenizer = SentencePieceBpeTokenizer.Create(File("tokenizer.model"));
        }
        else if (System.IO.File.Exists(File("vocab.txt")))
        {
            bool lower = config.DoLowerCase ?? true;
            tokenizer = WordPieceTokenizer.Create(File("vocab.txt"), new WordPieceOptions
            {
                LowerCase = lower,
                CleanUpTokenizationSpaces = config.CleanUpTokenizationSpaces ?? true,
            });
        }
        else
        {
            throw new FileNotFoundException(
                $"No tokenizer in {folder}: expected tokenizer.json, vocab.json + merges.txt, tokenizer.model or vocab.txt", folder);
        }

        config.ApplyRoles(tokenizer);
        if (config.AddBosToken is not null || config.AddEosToken is not null)
        {
            // transformers' Llama tokenizers rebuild their template from these flags (BOS defaults on, EOS off).
            tokenizer.PostProcessor = TemplatePostProcessor.BeginEnd(
                config.AddBosToken ?? true ? tokenizer.BeginningOfSentenceTokenId : null,
                config.AddEosToken ?? false ? tokenizer.EndOfSentenceTokenId : null);
        }
        return tokenizer;
    }

    /// <summary>Loads a Hugging Face tokenizer.json (no config files are consulted).</summary>
    public static Tokenizer FromTokenizerJson(string path) => TokenizerJsonLoader.Load(TokenizerFiles.ReadAllBytes(path), path);

    /// <summary>Loads a tokenizer.json from a stream; <paramref name="sourceName"/> names it in error messages.</summary>
    public static Tokenizer FromTokenizerJson(Stream stream, string sourceName = "tokenizer.json") =>
        TokenizerJsonLoader.Load(TokenizerFiles.ReadAllBytes(stream), sourceName);

    /// <summary>Folders with cls and sep roles (RoBERTa) get &lt;s&gt; A &lt;/s&gt; and &lt;s&gt; A &lt;/s&gt;&lt;/s&gt; B &lt;/s&gt;.</summary>
    private static TemplatePostProcessor? RobertaTemplate(Tokenizer tokenizer, TokenizerConfig config) =>
        config.Roles.TryGetValue(SpecialTokenRole.Classification, out var cls) && config.Roles.TryGetValue(SpecialTokenRole.Separator, out var sep)
        && tokenizer.TokenToId(cls.Token) is int clsId && tokenizer.TokenToId(sep.Token) is int sepId
            ? TemplatePostProcessor.Roberta(clsId, sepId)
            : null;
}
