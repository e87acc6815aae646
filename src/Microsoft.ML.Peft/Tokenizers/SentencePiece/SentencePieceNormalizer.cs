using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// SentencePiece's normaliser as its <c>NormalizerSpec</c> configures it: user-defined symbols pass through untouched,
/// otherwise the longest precompiled rule (nmt_nfkc, ...) or the character itself; with remove_extra_whitespaces,
/// leading, trailing and repeated spaces are dropped; a dummy "▁" prefix is added; spaces become "▁".
/// Only U+0020 counts as a space here (tabs and U+3000 are ordinary characters unless a rule maps them to ' ').
/// </summary>
internal sealed class SentencePieceNormalizer
{
    private const char SpaceSymbol = '\u2581';
    private const int MaxRuleChars = 16;

    private readonly PrecompiledCharsMap? _charsMap;
    private readonly UserDefinedSymbols? _userDefined;
    private readonly bool _addDummyPrefix;
    private readonly bool _removeExtraWhitespaces;
    private readonly bool _escapeWhitespaces;

    public SentencePieceNormalizer(PrecompiledCharsMap? charsMap, UserDefinedSymbols? userDefined, bool addDummyPrefix,
        bool removeExtraWhitespaces, bool escapeWhitespaces)
    {
        _charsMap = charsMap;
        _userDefined = userDefined;
        _addDummyPrefix = addDummyPrefix;
        _removeExtraWhitespaces = removeExtraWhitespaces;
        _escapeWhitespaces = escapeWhitespaces;
    }

    public void Normalize(ReadOnlySpan<char> input, int offset, NormalizedText output)
    {
        int position = 0;
        if (_removeExtraWhitespaces)
        {
            while (position < input.Length)
            {
                var piece = NormalizePrefix(input, position, out int consumed);
                if (piece is not " ") break;
                position += consumed;
            }
        }
        if (position == input.Length) return;

        if (_addDummyPrefix) output.Append(_escapeWhitespaces ? SpaceSymbol : ' ', offset + position, offset + position);
        bool previousIsSpace = _removeExtraWhitespaces;
        while (position < input.Length)
        {
            var piece = NormalizePrefix(input, position, out int consumed);
            int start = offset + position, end = start + consumed;
            int skip = 0;
            while (previousIsSpace && skip < piece.Length && piece[skip] == ' ') skip++;
            if (skip < piece.Length)
            {
                foreach (char c in piece[skip..]) output.Append(_escapeWhitespaces && c == ' ' ? SpaceSymbol : c, start, end);
                previousIsSpace = piece[^1] == ' ';
            }
            position += consumed;
            if (!_removeExtraWhitespaces) previousIsSpace = false;
        }
        if (_removeExtraWhitespaces)
        {
            char space = _escapeWhitespaces ? SpaceSymbol : ' ';
            int length = output.Length;
            while (length > 0 && output.Chars[length - 1] == space) length--;
            output.Truncate(length);
        }
    }

    /// <summary>The normalised form of the text at <paramref name="position"/> and how many units it consumes.</summary>
    private ReadOnlySpan<char> NormalizePrefix(ReadOnlySpan<char> input, int position, out int consumed)
    {
        var rest = input[position..];
        if (_userDefined is not null)
        {
            int length = _userDefined.LongestMatch(rest);
            if (length > 0)
            {
                consumed = length;
                return rest[..length];
            }
        }
        char c = rest[0];
        bool pair = char.IsHighSurrogate(c) && rest.Length > 1 && char.IsLowSurrogate(rest[1]);
        if (char.IsSurrogate(c) && !pair)
        {
            consumed = 1;
            return "\uFFFD";
        }
        if (_charsMap is not null && MatchRule(rest, out consumed, out string replacement)) return replacement;
        consumed = pair ? 2 : 1;
        return rest[..consumed];
    }

    /// <summary>Longest charsmap rule over the next few characters, accepted only when it ends on a character boundary.</summary>
    private bool MatchRule(ReadOnlySpan<char> rest, out int consumed, out string replacement)
    {
        Span<byte> utf8 = stackalloc byte[MaxRuleChars * 4];
        Span<int> charEnds = stackalloc int[MaxRuleChars * 4 + 1];
        charEnds.Fill(-1);
        int bytes = 0, chars = 0;
        while (chars < rest.Length && chars < MaxRuleChars)
        {
            int width = char.IsHighSurrogate(rest[chars]) && chars + 1 < rest.Length && char.IsLowSurrogate(rest[chars + 1]) ? 2 : 1;
            if (char.IsSurrogate(rest[chars]) && width == 1) break;
            bytes += Encoding.UTF8.GetBytes(rest.Slice(chars, width), utf8[bytes..]);
            chars += width;
            charEnds[bytes] = chars;
        }
        int matched = _charsMap!.LongestMatch(utf8[..bytes], out replacement, charEnds);
        consumed = matched > 0 ? charEnds[matched] : 0;
        return matched > 0;
    }
}

/// <summary>User-defined SentencePiece symbols: matched verbatim (longest first) and never split or merged.</summary>
internal sealed class UserDefinedSymbols
{
    private readonly Dictionary<char, string[]> _byFirstChar;

    public UserDefinedSymbols(IEnumerable<string> symbols)
    {
        _byFirstChar = symbols.Where(s => s.Length > 0).GroupBy(s => s[0])
            .ToDictionary(g => g.Key, g => g.OrderByDescending(s => s.Length).ToArray());
    }

    /// <summary>Length of the longest symbol that <paramref name="text"/> starts with, or 0.</summary>
    public int LongestMatch(ReadOnlySpan<char> text)
    {
        if (text.IsEmpty || !_byFirstChar.TryGetValue(text[0], out var candidates)) return 0;
        foreach (var s in candidates)
        {
            if (text.StartsWith(s, StringComparison.Ordinal)) return s.Length;
        }
        return 0;
    }
}
