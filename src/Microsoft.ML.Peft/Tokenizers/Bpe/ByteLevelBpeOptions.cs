namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>The regex a byte-level BPE tokenizer splits text with before merging.</summary>
public enum ByteLevelPreTokenization
{
    /// <summary>GPT-2 / RoBERTa: <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>.</summary>
    Gpt2,

    /// <summary>Llama 3: case-insensitive contractions, numbers in groups of at most three, line breaks kept apart.</summary>
    Llama3,
}

/// <summary>Settings of a <see cref="ByteLevelBpeTokenizer"/> loaded from vocab.json + merges.txt.</summary>
public sealed class ByteLevelBpeOptions
{
    /// <summary>Add a space before text that does not start with one (RoBERTa's add_prefix_space).</summary>
    public bool AddPrefixSpace { get; set; }

    /// <summary>The pre-tokenization regex.</summary>
    public ByteLevelPreTokenization PreTokenization { get; set; } = ByteLevelPreTokenization.Gpt2;

    /// <summary>Tokens of the vocabulary to match verbatim before pre-tokenization and treat as special (&lt;|endoftext|&gt;, &lt;s&gt;, ...).</summary>
    public IReadOnlyList<string> SpecialTokens { get; set; } = [];

    /// <summary>Unknown token, if the vocabulary has one (byte-level vocabularies rarely need it).</summary>
    public string? UnknownToken { get; set; }
}
