using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Turns text into token ids and back. Shaped like <c>Microsoft.ML.Tokenizers.Tokenizer</c> (EncodeToIds,
/// EncodeToTokens, CountTokens, Decode) so that code written against this class ports to the real package with few
/// edits; the pair/batch pipeline (special-token templates, truncation, padding) lives in <c>Tokenizer.Pipeline.cs</c>.
/// </summary>
/// <remarks>
/// <para>Instances are immutable after loading (except <see cref="PostProcessor"/>) and safe to use from several
/// threads at once; the byte-level BPE word cache is a concurrent dictionary.</para>
/// <para>Differences from the real package, on purpose: <see cref="EncodeToIds(string, bool, bool)"/> never adds
/// special tokens (use <see cref="Encode"/> or <see cref="EncodeBatch"/> for model inputs), and offsets of
/// <see cref="EncodedToken"/> always refer to the original text, never to the normalised one.</para>
/// </remarks>
public abstract partial class Tokenizer
{
    [ThreadStatic]
    private static TokenCollector? t_collector;

    private readonly TokenVocabulary _vocabulary;
    private readonly AddedToken[] _addedTokens;
    private readonly AddedTokenMatcher _matcher;
    private readonly HashSet<int> _specialIds = new();
    private readonly (string? Token, int? Id)[] _roles = new (string?, int?)[Enum.GetValues<SpecialTokenRole>().Length];

    /// <summary>Sets up the shared vocabulary (model tokens plus <paramref name="addedTokens"/>).</summary>
    private protected Tokenizer(TokenVocabulary modelVocabulary, IReadOnlyList<AddedToken> addedTokens, string sourceName)
    {
        _vocabulary = modelVocabulary.WithAddedTokens(addedTokens, sourceName);
        _addedTokens = [.. addedTokens];
        _matcher = new AddedTokenMatcher(addedTokens);
        foreach (var t in addedTokens)
        {
            if (t.Special) _specialIds.Add(t.Id);
        }
    }

    /// <summary>Every token (model vocabulary and added tokens) and its id.</summary>
    public IReadOnlyDictionary<string, int> Vocabulary => _vocabulary.TokenToId;

    /// <summary>One more than the largest id: the number of rows an embedding matrix needs.</summary>
    public int VocabularySize => _vocabulary.IdLimit;

    /// <summary>Tokens matched verbatim before normalisation (from tokenizer.json <c>added_tokens</c> or the caller).</summary>
    public IReadOnlyList<AddedToken> AddedTokens => _addedTokens;

    /// <summary>How this tokenizer turns special-token-free ids into model inputs ([CLS] A [SEP], &lt;s&gt; A, ...).</summary>
    public TemplatePostProcessor? PostProcessor { get; set; }

    /// <summary>The longest input the model accepts (tokenizer_config.json model_max_length), if known.</summary>
    public int? ModelMaxLength { get; internal set; }

    /// <summary>The token string of <paramref name="id"/>, or null when no token has that id.</summary>
    public string? IdToToken(int id) => _vocabulary.GetToken(id);

    /// <summary>The id of <paramref name="token"/>, or null when it is not in the vocabulary.</summary>
    public int? TokenToId(string token) => _vocabulary.TryGetId(token, out int id) ? id : null;

    /// <summary>Whether <paramref name="id"/> is a special token (dropped by <c>Decode(ids, skipSpecialTokens: true)</c>).</summary>
    public bool IsSpecialToken(int id) => _specialIds.Contains(id);

    /// <summary>The token playing <paramref name="role"/>, or null when this tokenizer has none.</summary>
    public string? GetSpecialToken(SpecialTokenRole role) => _roles[(int)role].Token;

    /// <summary>The id of the token playing <paramref name="role"/>, or null when this tokenizer has none.</summary>
    public int? GetSpecialTokenId(SpecialTokenRole role) => _roles[(int)role].Id;

    /// <summary>Id of the beginning-of-sentence token (&lt;s&gt;), if any.</summary>
    public int? BeginningOfSentenceTokenId => GetSpecialTokenId(SpecialTokenRole.BeginningOfSentence);

    /// <summary>Id of the end-of-sentence token (&lt;/s&gt;), if any.</summary>
    public int? EndOfSentenceTokenId => GetSpecialTokenId(SpecialTokenRole.EndOfSentence);

    /// <summary>Id of the padding token ([PAD]), if any.</summary>
    public int? PaddingTokenId => GetSpecialTokenId(SpecialTokenRole.Padding);

    /// <summary>Id of the unknown token ([UNK], &lt;unk&gt;), if any.</summary>
    public int? UnknownTokenId => GetSpecialTokenId(SpecialTokenRole.Unknown);

    /// <summary>Id of the classification token ([CLS]), if any.</summary>
    public int? ClassificationTokenId => GetSpecialTokenId(SpecialTokenRole.Classification);

    /// <summary>Id of the separator token ([SEP]), if any.</summary>
    public int? SeparatorTokenId => GetSpecialTokenId(SpecialTokenRole.Separator);

    /// <summary>Id of the mask token ([MASK]), if any.</summary>
    public int? MaskingTokenId => GetSpecialTokenId(SpecialTokenRole.Masking);

    /// <summary>
    /// Gives <paramref name="role"/> to <paramref name="token"/>, which must already be in the vocabulary, and marks
    /// it special. <paramref name="sourceName"/> and <paramref name="field"/> name where the request came from.
    /// </summary>
    internal void SetSpecialToken(SpecialTokenRole role, string? token, string sourceName, string field)
    {
        if (token is null)
        {
            _roles[(int)role] = (null, null);
            return;
        }
        if (!_vocabulary.TryGetId(token, out int id))
        {
            throw new TokenizerFormatException(sourceName, field, $"special token '{TokenVocabulary.Shorten(token)}' is not in the vocabulary");
        }
        _roles[(int)role] = (token, id);
        _specialIds.Add(id);
    }

    /// <summary>Marks <paramref name="id"/> as special (skipped when decoding with skipSpecialTokens).</summary>
    private protected void MarkSpecial(int id) => _specialIds.Add(id);

    /// <summary>Token ids of <paramref name="text"/>, without special tokens.</summary>
    public IReadOnlyList<int> EncodeToIds(string text, bool considerPreTokenization = true, bool considerNormalization = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeToIds(text.AsSpan(), considerPreTokenization, considerNormalization);
    }

    /// <summary>Token ids of <paramref name="text"/>, without special tokens.</summary>
    public IReadOnlyList<int> EncodeToIds(ReadOnlySpan<char> text, bool considerPreTokenization = true, bool considerNormalization = true)
    {
        var sink = new TokenCollector();
        sink.Reset(wantOffsets: false);
        EncodeCore(text, considerPreTokenization, considerNormalization, sink, null);
        return sink.Ids;
    }

    /// <summary>
    /// The first at most <paramref name="maxTokenCount"/> token ids of <paramref name="text"/>, cut at a token boundary
    /// that does not split a character; <paramref name="charsConsumed"/> is how much of the original text they cover.
    /// </summary>
    public IReadOnlyList<int> EncodeToIds(string text, int maxTokenCount, out string? normalizedText, out int charsConsumed,
        bool considerPreTokenization = true, bool considerNormalization = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeToIds(text.AsSpan(), maxTokenCount, out normalizedText, out charsConsumed, considerPreTokenization, considerNormalization);
    }

    /// <inheritdoc cref="EncodeToIds(string, int, out string?, out int, bool, bool)"/>
    public IReadOnlyList<int> EncodeToIds(ReadOnlySpan<char> text, int maxTokenCount, out string? normalizedText, out int charsConsumed,
        bool considerPreTokenization = true, bool considerNormalization = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxTokenCount);
        var sink = new TokenCollector();
        sink.Reset(wantOffsets: true);
        var normalized = considerNormalization ? new StringBuilder() : null;
        EncodeCore(text, considerPreTokenization, considerNormalization, sink, normalized);
        normalizedText = normalized?.ToString();
        int keep = Math.Min(maxTokenCount, sink.Count);
        // Tokens that share characters (the byte pieces of one character) must be kept or dropped together.
        while (keep > 0 && keep < sink.Count && sink.Starts[keep] < sink.Starts[keep - 1] + sink.Lengths[keep - 1]) keep--;
        charsConsumed = 0;
        for (int i = 0; i < keep; i++) charsConsumed = Math.Max(charsConsumed, sink.Starts[i] + sink.Lengths[i]);
        if (keep == sink.Count) charsConsumed = text.Length;
        return sink.Ids.GetRange(0, keep);
    }

    /// <summary>
    /// The tokens of <paramref name="text"/> with their vocabulary strings and offsets into <paramref name="text"/>;
    /// <paramref name="normalizedText"/> is the text the model saw after normalisation (null when normalisation is off).
    /// </summary>
    public IReadOnlyList<EncodedToken> EncodeToTokens(string text, out string? normalizedText, bool considerPreTokenization = true, bool considerNormalization = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        return EncodeToTokens(text.AsSpan(), out normalizedText, considerPreTokenization, considerNormalization);
    }

    /// <inheritdoc cref="EncodeToTokens(string, out string?, bool, bool)"/>
    public IReadOnlyList<EncodedToken> EncodeToTokens(ReadOnlySpan<char> text, out string? normalizedText, bool considerPreTokenization = true, bool considerNormalization = true)
    {
        var sink = new TokenCollector();
        sink.Reset(wantOffsets: true);
        var normalized = considerNormalization ? new StringBuilder() : null;
        EncodeCore(text, considerPreTokenization, considerNormalization, sink, normalized);
        normalizedText = normalized?.ToString();
        var tokens = new EncodedToken[sink.Count];
        for (int i = 0; i < tokens.Length; i++)
        {
            int id = sink.Ids[i];
            tokens[i] = new EncodedToken(id, _vocabulary.GetToken(id) ?? string.Empty, new Range(sink.Starts[i], sink.Starts[i] + sink.Lengths[i]));
        }
        return tokens;
    }

    /// <summary>The number of tokens <see cref="EncodeToIds(string, bool, bool)"/> would return.</summary>
    public int CountTokens(string text, bool considerPreTokenization = true, bool considerNormalization = true)
    {
        ArgumentNullException.ThrowIfNull(text);
        return CountTokens(text.AsSpan(), considerPreTokenization, considerNormalization);
    }

    /// <inheritdoc cref="CountTokens(string, bool, bool)"/>
    public int CountTokens(ReadOnlySpan<char> text, bool considerPreTokenization = true, bool considerNormalization = true)
    {
        var sink = RentCollector(wantOffsets: false);
        EncodeCore(text, considerPreTokenization, considerNormalization, sink, null);
        return sink.Count;
    }

    /// <summary>The text of <paramref name="ids"/>, special tokens included.</summary>
    public string Decode(IEnumerable<int> ids) => Decode(ids, skipSpecialTokens: false);

    /// <summary>The text of <paramref name="ids"/>; special tokens are dropped when <paramref name="skipSpecialTokens"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An id is not in the vocabulary.</exception>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens)
    {
        ArgumentNullException.ThrowIfNull(ids);
        int[] array = ids as int[] ?? [.. ids];
        for (int i = 0; i < array.Length; i++)
        {
            if (_vocabulary.GetToken(array[i]) is null)
            {
                throw new ArgumentOutOfRangeException(nameof(ids), array[i], $"ids[{i}] = {array[i]} is not a token id of this tokenizer (vocabulary size {VocabularySize})");
            }
        }
        return DecodeCore(array, skipSpecialTokens);
    }

    /// <summary>Encodes <paramref name="text"/>: added tokens are matched first, the text between them goes to <see cref="EncodeSegment"/>.</summary>
    private protected void EncodeCore(ReadOnlySpan<char> text, bool considerPreTokenization, bool considerNormalization, TokenCollector sink, StringBuilder? normalized)
    {
        int position = 0;
        while (position < text.Length)
        {
            if (_matcher.IsEmpty || !_matcher.TryFindNext(text, position, out int start, out int end, out var token))
            {
                EncodeSegment(text[position..], position, considerPreTokenization, considerNormalization, sink, normalized);
                return;
            }
            if (start > position)
            {
                EncodeSegment(text[position..start], position, considerPreTokenization, considerNormalization, sink, normalized);
            }
            sink.Add(token.Id, start, end - start);
            normalized?.Append(text[start..end]);
            position = end;
        }
    }

    /// <summary>
    /// Encodes a stretch of text that holds no added token. Offsets handed to <paramref name="sink"/> are relative to
    /// the whole text: <paramref name="offset"/> plus the position inside <paramref name="segment"/>. When
    /// <paramref name="normalized"/> is not null the encoder appends the normalised form of the segment to it.
    /// </summary>
    private protected abstract void EncodeSegment(ReadOnlySpan<char> segment, int offset, bool considerPreTokenization, bool considerNormalization,
        TokenCollector sink, StringBuilder? normalized);

    /// <summary>Decodes ids that are known to be in the vocabulary.</summary>
    private protected abstract string DecodeCore(ReadOnlySpan<int> ids, bool skipSpecialTokens);

    /// <summary>The model vocabulary plus added tokens, for subclasses.</summary>
    private protected TokenVocabulary FullVocabulary => _vocabulary;

    /// <summary>A per-thread collector for callers that copy the result out before encoding again.</summary>
    private protected static TokenCollector RentCollector(bool wantOffsets)
    {
        var sink = t_collector ??= new TokenCollector();
        sink.Reset(wantOffsets);
        return sink;
    }
}
