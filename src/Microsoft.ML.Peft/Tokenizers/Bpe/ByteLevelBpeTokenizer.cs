using System.Collections.Concurrent;
using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Byte-level BPE (GPT-2, RoBERTa, Llama 3): the text is split by a regex, each piece is turned into its UTF-8 bytes
/// written with <see cref="ByteLevelAlphabet"/>, and the pieces are merged by rank with <see cref="BpeModel"/>.
/// Every input is representable, so there is no unknown token.
/// </summary>
/// <remarks>
/// Merged pieces are cached by their text (a concurrent dictionary probed with a span, so a hit allocates nothing);
/// natural text repeats words so often that most pieces never reach the merge loop. The cache is cleared when it
/// reaches <see cref="MaxCacheEntries"/>.
/// </remarks>
public sealed class ByteLevelBpeTokenizer : Tokenizer
{
    private const int MaxCacheEntries = 100_000;
    private const int MaxCachedPieceLength = 64;

    private sealed record CachedPiece(int[] Ids, int[] Starts, int[] Lengths);

    [ThreadStatic]
    private static (List<(int, int)> Pieces, WordTokens Word, char[] Mapped, int[] ByteToChar)? t_scratch;

    private readonly BpeModel _model;
    private readonly PreTokenizer _preTokenizer;
    private readonly IReadOnlyList<DecoderStep> _decoder;
    private readonly ConcurrentDictionary<string, CachedPiece> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, CachedPiece>.AlternateLookup<ReadOnlySpan<char>> _cacheLookup;

    private ByteLevelBpeTokenizer(BpeModel model, IReadOnlyList<AddedToken> addedTokens, PreTokenizer preTokenizer, bool addPrefixSpace,
        IReadOnlyList<DecoderStep> decoder, string sourceName)
        : base(model.Vocabulary, addedTokens, sourceName)
    {
        _model = model;
        _preTokenizer = preTokenizer;
        _decoder = decoder;
        AddPrefixSpace = addPrefixSpace;
        _cacheLookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Whether a space is put before text that does not start with one.</summary>
    public bool AddPrefixSpace { get; }

    /// <summary>Loads vocab.json (token → id) and merges.txt (one "left right" pair per line, rank order).</summary>
    public static ByteLevelBpeTokenizer Create(string vocabJsonPath, string mergesTxtPath, ByteLevelBpeOptions? options = null) =>
        Create(TokenizerFiles.ReadAllBytes(vocabJsonPath), vocabJsonPath, TokenizerFiles.ReadAllBytes(mergesTxtPath), mergesTxtPath, options);

    /// <summary>As <see cref="Create(string, string, ByteLevelBpeOptions?)"/>, from streams.</summary>
    public static ByteLevelBpeTokenizer Create(Stream vocabJson, Stream mergesTxt, ByteLevelBpeOptions? options = null) =>
        Create(TokenizerFiles.ReadAllBytes(vocabJson), "vocab.json", TokenizerFiles.ReadAllBytes(mergesTxt), "merges.txt", options);

    private static ByteLevelBpeTokenizer Create(byte[] vocabBytes, string vocabName, byte[] mergesBytes, string mergesName, ByteLevelBpeOptions? options)
    {
        options ??= new ByteLevelBpeOptions();
        var vocabulary = ReadVocabJson(vocabBytes, vocabName);
        var merges = ReadMergesTxt(mergesBytes, mergesName);
        var model = new BpeModel(vocabulary, merges, options.UnknownToken, fuseUnknown: false, byteFallback: false, ignoreMerges: false,
            null, null, mergesName, "merges");
        var added = new List<AddedToken>();
        foreach (var token in options.SpecialTokens)
        {
            if (!vocabulary.TryGetId(token, out int id)) throw new TokenizerFormatException(vocabName, token, "special token is not in the vocabulary");
            if (added.TrueForAll(a => a.Content != token)) added.Add(new AddedToken(token, id, Special: true));
        }
        var preTokenizer = options.PreTokenization == ByteLevelPreTokenization.Llama3 ? (PreTokenizer)new Llama3PreTokenizer() : new Gpt2PreTokenizer();
        var tokenizer = new ByteLevelBpeTokenizer(model, added, preTokenizer, options.AddPrefixSpace, [new ByteLevelDecoderStep()], vocabName);
        if (options.UnknownToken is not null) tokenizer.SetSpecialToken(SpecialTokenRole.Unknown, options.UnknownToken, vocabName, "unk_token");
        return tokenizer;
    }

    /// <summary>Builds the tokenizer from parts read out of a tokenizer.json.</summary>
    internal static ByteLevelBpeTokenizer Create(BpeModel model, IReadOnlyList<AddedToken> addedTokens, PreTokenizer preTokenizer, bool addPrefixSpace,
        IReadOnlyList<DecoderStep> decoder, string sourceName) =>
        new(model, addedTokens, preTokenizer, addPrefixSpace, decoder, sourceName);

    /// <summary>Parses a JSON object of token → id.</summary>
    internal static TokenVocabulary ReadVocabJson(byte[] bytes, string sourceName)
    {
        using var document = JsonLimits.Parse(bytes, sourceName);
        return JsonVocabulary.Read(document.RootElement, sourceName, "$");
    }

    /// <summary>Parses merges.txt: an optional "#version" line, then "left right" per line; blank lines are skipped.</summary>
    internal static List<(string, string)> ReadMergesTxt(byte[] bytes, string sourceName)
    {
        var merges = new List<(string, string)>();
        var lines = TokenizerFiles.ReadLines(bytes, sourceName);
        for (int i = 0; i < lines.Count; i++)
        {
            string line = lines[i];
            if (line.Length == 0 || (i == 0 && line.StartsWith("#version", StringComparison.Ordinal))) continue;
            string[] parts = line.Split(' ');
            if (parts.Length != 2 || parts[0].Length == 0 || parts[1].Length == 0)
            {
                throw new TokenizerFormatException(sourceName, $"line {i + 1}", $"expected two tokens separated by one space, got '{TokenVocabulary.Shorten(line)}'");
            }
            merges.Add((parts[0], parts[1]));
        }
        return merges;
    }

    private protected override void EncodeSegment(ReadOnlySpan<char> segment, int offset, bool considerPreTokenization, bool considerNormalization,
        TokenCollector sink, StringBuilder? normalized)
    {
        // The prefix space is a character of the text to encode but has no original position: it maps to an empty
        // range at the segment start.
        bool prefix = AddPrefixSpace && !segment.IsEmpty && segment[0] != ' ';
        char[]? rented = null;
        ReadOnlySpan<char> text = segment;
        if (prefix)
        {
            rented = System.Buffers.ArrayPool<char>.Shared.Rent(segment.Length + 1);
            rented[0] = ' ';
            segment.CopyTo(rented.AsSpan(1));
            text = rented.AsSpan(0, segment.Length + 1);
        }
        normalized?.Append(text);
        var scratch = t_scratch ??= (new List<(int, int)>(), new WordTokens(), new char[256], new int[257]);
        var pieces = scratch.Pieces;
        pieces.Clear();
        if (considerPreTokenization) _preTokenizer.Split(text, pieces);
        else if (!text.IsEmpty) pieces.Add((0, text.Length));

        foreach (var (start, length) in pieces)
        {
            var piece = text.Slice(start, length);
            var cached = Lookup(piece);
            for (int t = 0; t < cached.Ids.Length; t++)
            {
                int s = start + cached.Starts[t], e = s + cached.Lengths[t];
                if (prefix)
                {
                    s = Math.Max(s - 1, 0);
                    e = Math.Max(e - 1, 0);
                }
                sink.Add(cached.Ids[t], offset + s, e - s);
            }
        }
        if (rented is not null) System.Buffers.ArrayPool<char>.Shared.Return(rented);
    }

    /// <summary>The tokens of one pre-tokenized piece, from the cache or by merging its bytes.</summary>
    private CachedPiece Lookup(ReadOnlySpan<char> piece)
    {
        if (_cacheLookup.TryGetValue(piece, out var hit)) return hit;
        var computed = Compute(piece);
        if (piece.Length <= MaxCachedPieceLength)
        {
            if (_cache.Count >= MaxCacheEntries) _cache.Clear();
            _cache.TryAdd(piece.ToString(), computed);
        }
        return computed;
    }

    private CachedPiece Compute(ReadOnlySpan<char> piece)
    {
        var (_, word, mapped, byteToChar) = t_scratch!.Value;
        int byteCount = Encoding.UTF8.GetByteCount(piece);
        if (mapped.Length < byteCount)
        {
            mapped = new char[byteCount * 2];
            byteToChar = new int[byteCount * 2 + 1];
            t_scratch = (t_scratch.Value.Pieces, word, mapped, byteToChar);
        }
        // Byte b of the piece is written as ByteLevelAlphabet.CharOf(b); byteToChar[b] is the first unit of its character.
        Span<byte> utf8 = stackalloc byte[4];
        int written = 0;
        for (int i = 0; i < piece.Length;)
        {
            int width = char.IsHighSurrogate(piece[i]) && i + 1 < piece.Length && char.IsLowSurrogate(piece[i + 1]) ? 2 : 1;
            int n = Encoding.UTF8.GetBytes(piece.Slice(i, width), utf8);
            for (int k = 0; k < n; k++)
            {
                mapped[written] = ByteLevelAlphabet.CharOf(utf8[k]);
                byteToChar[written++] = i;
            }
            i += width;
        }
        byteToChar[written] = piece.Length;
        _model.EncodeWord(mapped.AsSpan(0, written), word);
        var ids = new int[word.Count];
        var starts = new int[word.Count];
        var lengths = new int[word.Count];
        for (int t = 0; t < ids.Length; t++)
        {
            int firstByte = word.Starts[t], endByte = firstByte + word.Lengths[t];
            // A token ending inside a character still covers that whole character.
            int endChar = endByte >= written ? piece.Length : NextCharStart(byteToChar, endByte, written, piece.Length);
            ids[t] = word.Ids[t];
            starts[t] = byteToChar[firstByte];
            lengths[t] = endChar - starts[t];
        }
        return new CachedPiece(ids, starts, lengths);
    }

    private static int NextCharStart(int[] byteToChar, int endByte, int byteCount, int pieceLength)
    {
        int start = byteToChar[endByte - 1];
        for (int b = endByte; b < byteCount; b++)
        {
            if (byteToChar[b] != start) return byteToChar[b];
        }
        return pieceLength;
    }

    /// <summary>Token strings through the decoder chain (byte-level: characters back to bytes, then UTF-8).</summary>
    private protected override string DecodeCore(ReadOnlySpan<int> ids, bool skipSpecialTokens)
    {
        var tokens = new List<string>(ids.Length);
        foreach (int id in ids)
        {
            if (skipSpecialTokens && IsSpecialToken(id)) continue;
            tokens.Add(FullVocabulary.GetToken(id)!);
        }
        return _decoder.Count == 0 ? string.Join(' ', tokens) : DecoderStep.Decode(_decoder, tokens);
    }
}
