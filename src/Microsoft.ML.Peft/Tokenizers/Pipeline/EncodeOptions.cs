namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>How <see cref="Tokenizer.EncodeBatch"/> shortens inputs longer than <see cref="EncodeOptions.MaxLength"/>.</summary>
public enum TruncationStrategy
{
    /// <summary>Shorten the longer sequence of a pair first (Hugging Face <c>longest_first</c>).</summary>
    LongestFirst,

    /// <summary>Only shorten the first sequence; fail when that is not enough.</summary>
    OnlyFirst,

    /// <summary>Only shorten the second sequence; fail when that is not enough or there is none.</summary>
    OnlySecond,

    /// <summary>Never shorten.</summary>
    DoNotTruncate,
}

/// <summary>Which end of a sequence truncation removes tokens from.</summary>
public enum TruncationSide
{
    /// <summary>Keep the beginning.</summary>
    Right,

    /// <summary>Keep the end.</summary>
    Left,
}

/// <summary>How rows are padded.</summary>
public enum PaddingStrategy
{
    /// <summary>No padding (a batch must then have rows of equal length).</summary>
    DoNotPad,

    /// <summary>Pad every row of a batch to its longest row.</summary>
    Longest,

    /// <summary>Pad every row to <see cref="EncodeOptions.MaxLength"/>.</summary>
    MaxLength,
}

/// <summary>Which end padding goes to.</summary>
public enum PaddingSide
{
    /// <summary>After the tokens (encoders such as BERT).</summary>
    Right,

    /// <summary>Before the tokens (decoder-only models generating after the prompt).</summary>
    Left,
}

/// <summary>Options of <see cref="Tokenizer.Encode"/> and <see cref="Tokenizer.EncodeBatch"/>.</summary>
public sealed class EncodeOptions
{
    /// <summary>Apply the tokenizer's <see cref="Tokenizer.PostProcessor"/> special tokens ([CLS] ... [SEP], &lt;s&gt; ...).</summary>
    public bool AddSpecialTokens { get; set; } = true;

    /// <summary>Maximum row length including special tokens; null means unlimited.</summary>
    public int? MaxLength { get; set; }

    /// <summary>How to shorten rows longer than <see cref="MaxLength"/>.</summary>
    public TruncationStrategy Truncation { get; set; } = TruncationStrategy.LongestFirst;

    /// <summary>Which end truncation removes tokens from.</summary>
    public TruncationSide TruncationSide { get; set; } = TruncationSide.Right;

    /// <summary>How to pad.</summary>
    public PaddingStrategy Padding { get; set; } = PaddingStrategy.Longest;

    /// <summary>Which end padding goes to.</summary>
    public PaddingSide PaddingSide { get; set; } = PaddingSide.Right;

    /// <summary>Round the padded length up to a multiple of this (e.g. 8 for tensor cores); null for none.</summary>
    public int? PadToMultipleOf { get; set; }

    /// <summary>Padding id to use instead of the tokenizer's own (Llama has no pad token; use its EOS or UNK).</summary>
    public int? PaddingTokenId { get; set; }
}
