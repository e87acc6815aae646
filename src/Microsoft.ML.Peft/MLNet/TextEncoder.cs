using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft;

/// <summary>
/// Turns one text (or text pair) into model input ids exactly the same way for training and scoring: the tokenizer's
/// special-token template, truncation to <see cref="MaxLength"/> tokens (longest-first for pairs), no padding.
/// </summary>
internal sealed class TextEncoder
{
    private readonly Tokenizer tokenizer;
    private readonly EncodeOptions full = new() { Padding = PaddingStrategy.DoNotPad, Truncation = TruncationStrategy.DoNotTruncate };
    private readonly EncodeOptions truncating;
    private readonly int emptyTextId;

    /// <param name="tokenizer">The base model's tokenizer.</param>
    /// <param name="maxLength">Tokens per example including special tokens.</param>
    /// <param name="useTokenTypeIds">Whether the model reads segment ids (BERT-style pairs).</param>
    /// <param name="emptyTextId">
    /// The single id an example gets when the text and template produce no token at all (a decoder without BOS and
    /// an empty text), so that every example has a position to classify.
    /// </param>
    public TextEncoder(Tokenizer tokenizer, int maxLength, bool useTokenTypeIds, int emptyTextId)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        this.tokenizer = tokenizer;
        MaxLength = maxLength;
        UseTokenTypeIds = useTokenTypeIds;
        this.emptyTextId = emptyTextId;
        truncating = new EncodeOptions { Padding = PaddingStrategy.DoNotPad, Truncation = TruncationStrategy.LongestFirst, MaxLength = maxLength };
    }

    public int MaxLength { get; }

    public bool UseTokenTypeIds { get; }

    /// <summary>Ids (and segment ids when used) of one example; <paramref name="truncated"/> tells whether tokens were cut.</summary>
    public (int[] Ids, int[]? TypeIds) Encode(string text, string? pair, out bool truncated)
    {
        var encoded = tokenizer.Encode(text, pair, full);
        truncated = encoded.Length > MaxLength;
        if (truncated) encoded = tokenizer.Encode(text, pair, truncating);
        if (encoded.Length == 0) return ([emptyTextId], UseTokenTypeIds ? [0] : null);
        return (encoded.InputIds, UseTokenTypeIds ? encoded.TokenTypeIds : null);
    }
}
