namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>Settings of a <see cref="WordPieceTokenizer"/> (the defaults are bert-base-uncased's).</summary>
public sealed class WordPieceOptions
{
    /// <summary>Token for words that cannot be split into vocabulary pieces.</summary>
    public string UnknownToken { get; set; } = "[UNK]";

    /// <summary>Prefix marking a piece that continues a word.</summary>
    public string ContinuingSubwordPrefix { get; set; } = "##";

    /// <summary>Longer words (counted in code points) become <see cref="UnknownToken"/>.</summary>
    public int MaxInputCharsPerWord { get; set; } = 100;

    /// <summary>Lower-case the text (BERT uncased models).</summary>
    public bool LowerCase { get; set; } = true;

    /// <summary>Strip accents (NFD, drop non-spacing marks); null follows <see cref="LowerCase"/>, as BERT does.</summary>
    public bool? StripAccents { get; set; }

    /// <summary>Remove control characters and turn every whitespace character into a space.</summary>
    public bool CleanText { get; set; } = true;

    /// <summary>Put spaces around CJK ideographs so each becomes a word.</summary>
    public bool TokenizeChineseCharacters { get; set; } = true;

    /// <summary>Tidy spaces before punctuation and contractions when decoding (" ." → ".", " n't" → "n't").</summary>
    public bool CleanUpTokenizationSpaces { get; set; } = true;

    /// <summary>Classification token; becomes a special token when it is in the vocabulary.</summary>
    public string ClassificationToken { get; set; } = "[CLS]";

    /// <summary>Separator token; becomes a special token when it is in the vocabulary.</summary>
    public string SeparatorToken { get; set; } = "[SEP]";

    /// <summary>Padding token; becomes a special token when it is in the vocabulary.</summary>
    public string PaddingToken { get; set; } = "[PAD]";

    /// <summary>Mask token; becomes a special token when it is in the vocabulary.</summary>
    public string MaskingToken { get; set; } = "[MASK]";
}
