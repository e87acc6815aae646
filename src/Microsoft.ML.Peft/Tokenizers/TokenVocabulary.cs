namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Token ↔ id maps of one tokenizer model. Lookups by <see cref="ReadOnlySpan{T}"/> go through the dictionary's
/// alternate lookup, so the encoders never allocate a string to ask whether a substring is a token.
/// </summary>
internal sealed class TokenVocabulary
{
    /// <summary>Ids must be dense-ish: the largest id may exceed the entry count by at most this much.</summary>
    private const int MaxIdSlack = 1 << 16;

    private readonly Dictionary<string, int> _tokenToId;
    private readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _spanLookup;
    private readonly string?[] _idToToken;

    private TokenVocabulary(Dictionary<string, int> tokenToId, string?[] idToToken)
    {
        _tokenToId = tokenToId;
        _spanLookup = tokenToId.GetAlternateLookup<ReadOnlySpan<char>>();
        _idToToken = idToToken;
    }

    /// <summary>Token → id.</summary>
    public IReadOnlyDictionary<string, int> TokenToId => _tokenToId;

    /// <summary>One more than the largest id.</summary>
    public int IdLimit => _idToToken.Length;

    public bool TryGetId(ReadOnlySpan<char> token, out int id) => _spanLookup.TryGetValue(token, out id);

    public bool TryGetId(string token, out int id) => _tokenToId.TryGetValue(token, out id);

    public string? GetToken(int id) => (uint)id < (uint)_idToToken.Length ? _idToToken[id] : null;

    /// <summary>
    /// Builds the maps from (token, id) pairs. Two tokens with one id, negative ids and ids far beyond the entry count
    /// are format errors (a huge id would otherwise make us allocate a huge reverse table). A token listed twice keeps
    /// its last id, as the Hugging Face loaders do.
    /// </summary>
    public static TokenVocabulary Build(IEnumerable<KeyValuePair<string, int>> entries, string sourceName, string field)
    {
        var list = entries as IReadOnlyCollection<KeyValuePair<string, int>> ?? [.. entries];
        var tokenToId = new Dictionary<string, int>(list.Count, StringComparer.Ordinal);
        var idToToken = new List<string?>(list.Count);
        foreach (var (token, id) in list)
        {
            if (id < 0 || id > list.Count + MaxIdSlack)
            {
                throw new TokenizerFormatException(sourceName, field,
                    $"token '{Shorten(token)}' has id {id}; ids must be non-negative and dense (at most {MaxIdSlack} beyond the entry count)");
            }
            while (idToToken.Count <= id) idToToken.Add(null);
            if (idToToken[id] is { } existing && existing != token)
            {
                throw new TokenizerFormatException(sourceName, field,
                    $"id {id} is given to both '{Shorten(existing)}' and '{Shorten(token)}'");
            }
            idToToken[id] = token;
            tokenToId[token] = id;
        }
        return new TokenVocabulary(tokenToId, [.. idToToken]);
    }

    /// <summary>Builds the maps from a token list where the line number is the id (vocab.txt).</summary>
    public static TokenVocabulary FromList(IReadOnlyList<string> tokens)
    {
        var tokenToId = new Dictionary<string, int>(tokens.Count, StringComparer.Ordinal);
        for (int i = 0; i < tokens.Count; i++) tokenToId[tokens[i]] = i;
        return new TokenVocabulary(tokenToId, [.. tokens]);
    }

    /// <summary>A copy of this vocabulary with the added tokens merged in (ids of added tokens may lie beyond the model's).</summary>
    public TokenVocabulary WithAddedTokens(IReadOnlyList<AddedToken> addedTokens, string sourceName)
    {
        if (addedTokens.Count == 0) return this;
        var tokenToId = new Dictionary<string, int>(_tokenToId, StringComparer.Ordinal);
        int limit = _idToToken.Length;
        foreach (var t in addedTokens) limit = Math.Max(limit, t.Id + 1);
        if (limit > _idToToken.Length + addedTokens.Count + MaxIdSlack)
        {
            throw new TokenizerFormatException(sourceName, "added_tokens", $"an added token id ({limit - 1}) lies far beyond the vocabulary");
        }
        var idToToken = new string?[limit];
        Array.Copy(_idToToken, idToToken, _idToToken.Length);
        foreach (var t in addedTokens)
        {
            if (idToToken[t.Id] is { } existing && existing != t.Content)
            {
                throw new TokenizerFormatException(sourceName, "added_tokens",
                    $"added token '{Shorten(t.Content)}' has id {t.Id}, which already belongs to '{Shorten(existing)}'");
            }
            idToToken[t.Id] = t.Content;
            tokenToId[t.Content] = t.Id;
        }
        return new TokenVocabulary(tokenToId, idToToken);
    }

    internal static string Shorten(string s) => s.Length <= 40 ? s : string.Concat(s.AsSpan(0, 37), "...");
}
