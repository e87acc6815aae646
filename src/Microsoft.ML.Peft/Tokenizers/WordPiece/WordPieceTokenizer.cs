using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// BERT's tokenizer: the basic tokenizer (<see cref="BertNormalizer"/>, then split on whitespace and around every
/// punctuation character) followed by greedy longest-match-first WordPiece with "##" continuation pieces.
/// </summary>
/// <remarks>
/// Sub-word lookups probe the vocabulary with spans (no string per candidate); continuation pieces live in their own
/// map keyed without the "##" so that a lookup never has to build "##" + candidate. The longest-match loop starts at
/// the longest vocabulary entry rather than at the end of the word, which bounds it for long words.
/// </remarks>
public sealed class WordPieceTokenizer : Tokenizer
{
    private readonly TokenVocabulary _model;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _continuations;
    private readonly BertNormalizer _normalizer;
    private readonly int _maxInitialLength;
    private readonly int _maxContinuationLength;
    private readonly bool _cleanUpTokenizationSpaces;

    private WordPieceTokenizer(TokenVocabulary model, IReadOnlyList<AddedToken> addedTokens, WordPieceOptions options, string sourceName)
        : base(model, addedTokens, sourceName)
    {
        _model = model;
        if (!model.TryGetId(options.UnknownToken, out int unknownId))
        {
            throw new TokenizerFormatException(sourceName, "unk_token", $"unknown token '{options.UnknownToken}' is not in the vocabulary");
        }
        if (options.MaxInputCharsPerWord < 1)
        {
            throw new TokenizerFormatException(sourceName, "max_input_chars_per_word", $"must be positive, got {options.MaxInputCharsPerWord}");
        }
        UnknownToken = options.UnknownToken;
        UnknownId = unknownId;
        ContinuingSubwordPrefix = options.ContinuingSubwordPrefix;
        MaxInputCharsPerWord = options.MaxInputCharsPerWord;
        LowerCase = options.LowerCase;
        StripAccents = options.StripAccents ?? options.LowerCase;
        _cleanUpTokenizationSpaces = options.CleanUpTokenizationSpaces;
        _normalizer = new BertNormalizer(options.CleanText, options.TokenizeChineseCharacters, StripAccents, LowerCase);

        var continuations = new Dictionary<string, int>(StringComparer.Ordinal);
        string prefix = ContinuingSubwordPrefix;
        foreach (var (token, id) in model.TokenToId)
        {
            if (token.StartsWith(prefix, StringComparison.Ordinal))
            {
                continuations[token[prefix.Length..]] = id;
                _maxContinuationLength = Math.Max(_maxContinuationLength, token.Length - prefix.Length);
            }
            _maxInitialLength = Math.Max(_maxInitialLength, token.Length);
        }
        _continuations = continuations.GetAlternateLookup<ReadOnlySpan<char>>();

        SetSpecialToken(SpecialTokenRole.Unknown, UnknownToken, sourceName, "unk_token");
        SetRoleIfPresent(SpecialTokenRole.Classification, options.ClassificationToken, sourceName);
        SetRoleIfPresent(SpecialTokenRole.Separator, options.SeparatorToken, sourceName);
        SetRoleIfPresent(SpecialTokenRole.Padding, options.PaddingToken, sourceName);
        SetRoleIfPresent(SpecialTokenRole.Masking, options.MaskingToken, sourceName);
        if (ClassificationTokenId is int cls && SeparatorTokenId is int sep) PostProcessor = TemplatePostProcessor.Bert(cls, sep);
    }

    /// <summary>The token for unknown words.</summary>
    public string UnknownToken { get; }

    /// <summary>Id of <see cref="UnknownToken"/>.</summary>
    public int UnknownId { get; }

    /// <summary>Prefix of continuation pieces ("##").</summary>
    public string ContinuingSubwordPrefix { get; }

    /// <summary>Words longer than this (in code points) become <see cref="UnknownToken"/>.</summary>
    public int MaxInputCharsPerWord { get; }

    /// <summary>Whether text is lower-cased.</summary>
    public bool LowerCase { get; }

    /// <summary>Whether accents are stripped.</summary>
    public bool StripAccents { get; }

    /// <summary>Loads a vocab.txt (one token per line, the line number is the id).</summary>
    public static WordPieceTokenizer Create(string vocabFilePath, WordPieceOptions? options = null) =>
        Create(TokenizerFiles.ReadAllBytes(vocabFilePath), vocabFilePath, options);

    /// <summary>Loads a vocab.txt from a stream; <paramref name="sourceName"/> names it in error messages.</summary>
    public static WordPieceTokenizer Create(Stream vocabStream, WordPieceOptions? options = null, string sourceName = "vocab.txt") =>
        Create(TokenizerFiles.ReadAllBytes(vocabStream), sourceName, options);

    private static WordPieceTokenizer Create(byte[] bytes, string sourceName, WordPieceOptions? options)
    {
        options ??= new WordPieceOptions();
        var lines = TokenizerFiles.ReadLines(bytes, sourceName);
        if (lines.Count == 0) throw new TokenizerFormatException(sourceName, "line 1", "the vocabulary is empty");
        var vocabulary = TokenVocabulary.FromList(lines);
        // The BERT special tokens are matched verbatim in the input, as transformers' BertTokenizer does.
        var added = new List<AddedToken>();
        foreach (var token in new[] { options.PaddingToken, options.UnknownToken, options.ClassificationToken, options.SeparatorToken, options.MaskingToken })
        {
            if (vocabulary.TryGetId(token, out int id) && added.TrueForAll(a => a.Id != id)) added.Add(new AddedToken(token, id, Special: true));
        }
        return new WordPieceTokenizer(vocabulary, added, options, sourceName);
    }

    /// <summary>Builds the tokenizer from parts read out of a tokenizer.json.</summary>
    internal static WordPieceTokenizer Create(TokenVocabulary vocabulary, IReadOnlyList<AddedToken> addedTokens, WordPieceOptions options, string sourceName) =>
        new(vocabulary, addedTokens, options, sourceName);

    private void SetRoleIfPresent(SpecialTokenRole role, string token, string sourceName)
    {
        if (TokenToId(token) is not null) SetSpecialToken(role, token, sourceName, role.ToString());
    }

    private protected override void EncodeSegment(ReadOnlySpan<char> segment, int offset, bool considerPreTokenization, bool considerNormalization,
        TokenCollector sink, StringBuilder? normalized)
    {
        var text = NormalizedText.Rent();
        if (considerNormalization)
        {
            _normalizer.Normalize(segment, offset, text);
        }
        else
        {
            for (int i = 0; i < segment.Length; i++) text.Append(segment[i], offset + i, offset + i + 1);
        }
        normalized?.Append(text.Chars);
        if (!considerPreTokenization)
        {
            if (text.Length > 0) EncodeWord(text, 0, text.Length, sink);
            return;
        }

        // BertPreTokenizer: whitespace separates words and is dropped; each punctuation character is a word of its own.
        var chars = text.Chars;
        int position = 0;
        while (position < chars.Length)
        {
            byte cls = ClassAt(chars, position, out int width);
            if ((cls & BertCharClass.Whitespace) != 0)
            {
                position += width;
                continue;
            }
            if ((cls & BertCharClass.Punctuation) != 0)
            {
                EncodeWord(text, position, position + width, sink);
                position += width;
                continue;
            }
            int start = position;
            do
            {
                position += width;
            }
            while (position < chars.Length && (ClassAt(chars, position, out width) & (BertCharClass.Whitespace | BertCharClass.Punctuation)) == 0);
            EncodeWord(text, start, position, sink);
        }
    }

    /// <summary>Greedy longest-match-first WordPiece of normalised units [start, end); an unsplittable word is one [UNK].</summary>
    private void EncodeWord(NormalizedText text, int start, int end, TokenCollector sink)
    {
        var chars = text.Chars;
        if (end - start > MaxInputCharsPerWord && CountRunes(chars[start..end]) > MaxInputCharsPerWord)
        {
            AddMapped(text, UnknownId, start, end, sink);
            return;
        }
        int firstToken = sink.Count;
        int position = start;
        while (position < end)
        {
            bool initial = position == start;
            int stop = Math.Min(end, position + (initial ? _maxInitialLength : _maxContinuationLength));
            if (stop < end && char.IsLowSurrogate(chars[stop])) stop--;
            int id = -1;
            while (stop > position)
            {
                var candidate = chars[position..stop];
                if (initial ? _model.TryGetId(candidate, out id) : _continuations.TryGetValue(candidate, out id)) break;
                id = -1;
                stop -= stop - position >= 2 && char.IsLowSurrogate(chars[stop - 1]) && char.IsHighSurrogate(chars[stop - 2]) ? 2 : 1;
            }
            if (id < 0)
            {
                sink.Truncate(firstToken);
                AddMapped(text, UnknownId, start, end, sink);
                return;
            }
            AddMapped(text, id, position, stop, sink);
            position = stop;
        }
    }

    private static void AddMapped(NormalizedText text, int id, int start, int end, TokenCollector sink)
    {
        if (sink.WantOffsets)
        {
            var (s, length) = text.MapToOriginal(start, end);
            sink.Add(id, s, length);
        }
        else
        {
            sink.Add(id, 0, 0);
        }
    }

    private static byte ClassAt(ReadOnlySpan<char> chars, int index, out int width)
    {
        char c = chars[index];
        if (char.IsHighSurrogate(c) && index + 1 < chars.Length && char.IsLowSurrogate(chars[index + 1]))
        {
            width = 2;
            return BertCharClass.Of(char.ConvertToUtf32(c, chars[index + 1]));
        }
        width = 1;
        return BertCharClass.Of(c);
    }

    private static int CountRunes(ReadOnlySpan<char> chars)
    {
        int count = 0;
        for (int i = 0; i < chars.Length; i++)
        {
            if (!(char.IsLowSurrogate(chars[i]) && i > 0 && char.IsHighSurrogate(chars[i - 1]))) count++;
        }
        return count;
    }

    /// <summary>
    /// Joins tokens with spaces, gluing "##" pieces to the previous token (the Hugging Face WordPiece decoder), then,
    /// when configured, removes the spaces BERT's tokenisation put before punctuation and contractions.
    /// </summary>
    private protected override string DecodeCore(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var sb = new StringBuilder();
        bool first = true;
        foreach (int id in ids)
        {
            if (skipSpecialTokens && IsSpecialToken(id)) continue;
            string token = FullVocabulary.GetToken(id)!;
            if (!first && ContinuingSubwordPrefix.Length > 0 && token.StartsWith(ContinuingSubwordPrefix, StringComparison.Ordinal))
            {
                sb.Append(token, ContinuingSubwordPrefix.Length, token.Length - ContinuingSubwordPrefix.Length);
            }
            else
            {
                if (!first) sb.Append(' ');
                sb.Append(token);
            }
            first = false;
        }
        if (_cleanUpTokenizationSpaces)
        {
            sb.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
              .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
        }
        return sb.ToString();
    }
}
