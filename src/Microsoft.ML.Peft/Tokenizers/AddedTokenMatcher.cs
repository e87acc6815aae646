namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Finds added tokens (leftmost, then longest) in raw text, before any normalisation, as the Hugging Face tokenizers
/// do for tokens with <c>normalized: false</c>. Candidates are bucketed by first character, so a scan costs one
/// dictionary probe per character that starts some added token and nothing for the others.
/// </summary>
internal sealed class AddedTokenMatcher
{
    private readonly Dictionary<char, AddedToken[]> _byFirstChar;

    public AddedTokenMatcher(IReadOnlyList<AddedToken> tokens)
    {
        _byFirstChar = tokens
            .Where(t => t.Content.Length > 0)
            .GroupBy(t => t.Content[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(t => t.Content.Length).ToArray());
    }

    public bool IsEmpty => _byFirstChar.Count == 0;

    /// <summary>
    /// Finds the first added token at or after <paramref name="from"/>. <paramref name="start"/>..<paramref name="end"/>
    /// is the span it consumes, including the whitespace swallowed by lstrip/rstrip.
    /// </summary>
    public bool TryFindNext(ReadOnlySpan<char> text, int from, out int start, out int end, out AddedToken token)
    {
        for (int p = from; p < text.Length; p++)
        {
            if (!_byFirstChar.TryGetValue(text[p], out var candidates)) continue;
            foreach (var candidate in candidates)
            {
                var content = candidate.Content.AsSpan();
                if (!text[p..].StartsWith(content, StringComparison.Ordinal)) continue;
                int matchEnd = p + content.Length;
                if (candidate.SingleWord && (IsWordChar(text, p - 1) || IsWordChar(text, matchEnd))) continue;
                start = p;
                end = matchEnd;
                if (candidate.LStrip) while (start > from && char.IsWhiteSpace(text[start - 1])) start--;
                if (candidate.RStrip) while (end < text.Length && char.IsWhiteSpace(text[end])) end++;
                token = candidate;
                return true;
            }
        }
        start = end = text.Length;
        token = null!;
        return false;
    }

    private static bool IsWordChar(ReadOnlySpan<char> text, int index) =>
        (uint)index < (uint)text.Length && (char.IsLetterOrDigit(text[index]) || text[index] == '_');
}
