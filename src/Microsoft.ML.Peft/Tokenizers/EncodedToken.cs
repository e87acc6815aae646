namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>One token produced by <see cref="Tokenizer.EncodeToTokens(string, out string?, bool, bool)"/>.</summary>
/// <remarks>
/// <see cref="Offset"/> always refers to the <em>original</em> text passed to the encoder (UTF-16 code units), even when
/// the tokenizer normalised it (lower-casing, accent stripping, the SentencePiece "▁" prefix): a token that covers
/// inserted characters only (e.g. a lone "▁" from the dummy prefix) has an empty range at the position it was
/// inserted, and all byte tokens of one character share that character's range.
/// </remarks>
public readonly struct EncodedToken : IEquatable<EncodedToken>
{
    /// <summary>Creates a token.</summary>
    public EncodedToken(int id, string value, Range offset)
    {
        Id = id;
        Value = value;
        Offset = offset;
    }

    /// <summary>The token id.</summary>
    public int Id { get; }

    /// <summary>The token string as it appears in the vocabulary (e.g. "##ing", "Ġworld", "▁the", "&lt;0x0A&gt;").</summary>
    public string Value { get; }

    /// <summary>The characters of the original text this token came from.</summary>
    public Range Offset { get; }

    /// <summary>Start of <see cref="Offset"/> in the original text.</summary>
    public int Start => Offset.Start.Value;

    /// <summary>Length of <see cref="Offset"/> in the original text.</summary>
    public int Length => Offset.End.Value - Offset.Start.Value;

    /// <inheritdoc/>
    public bool Equals(EncodedToken other) => Id == other.Id && Value == other.Value && Offset.Equals(other.Offset);

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is EncodedToken other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Id, Value, Offset);

    /// <summary>Value equality.</summary>
    public static bool operator ==(EncodedToken left, EncodedToken right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(EncodedToken left, EncodedToken right) => !left.Equals(right);

    /// <inheritdoc/>
    public override string ToString() => $"{Id} '{Value}' [{Start}, {Start + Length})";
}
