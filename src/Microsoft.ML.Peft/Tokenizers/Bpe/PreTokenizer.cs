using System.Globalization;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Splits text into the pieces a BPE model encodes one at a time. Implementations append (start, length) ranges that
/// cover the text in order.
/// </summary>
internal abstract class PreTokenizer
{
    /// <summary>GPT-2's pattern, as Hugging Face's ByteLevel pre-tokenizer writes it.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    /// <summary>Llama 3's pattern (tiktoken cl100k style).</summary>
    public const string Llama3Pattern = @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    public abstract void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces);

    /// <summary>The splitter for a regex: hand-written scanners for the GPT-2 and Llama-3 patterns, .NET Regex otherwise.</summary>
    public static PreTokenizer ForPattern(string pattern) => pattern switch
    {
        Gpt2Pattern => new Gpt2PreTokenizer(),
        Llama3Pattern => new Llama3PreTokenizer(),
        _ => new RegexPreTokenizer(pattern),
    };
}

/// <summary>No split: the whole text is one piece.</summary>
internal sealed class WholeTextPreTokenizer : PreTokenizer
{
    public override void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        if (!text.IsEmpty) pieces.Add((0, text.Length));
    }
}

/// <summary>Applies each splitter to every piece the previous one produced (a Hugging Face Sequence pre-tokenizer).</summary>
internal sealed class SequencePreTokenizer(IReadOnlyList<PreTokenizer> parts) : PreTokenizer
{
    public override void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        var current = new List<(int Start, int Length)> { (0, text.Length) };
        var next = new List<(int Start, int Length)>();
        var inner = new List<(int Start, int Length)>();
        foreach (var part in parts)
        {
            next.Clear();
            foreach (var (start, length) in current)
            {
                inner.Clear();
                part.Split(text.Slice(start, length), inner);
                foreach (var (s, l) in inner) next.Add((start + s, l));
            }
            (current, next) = (next, current);
        }
        pieces.AddRange(current);
    }
}

/// <summary>
/// A Hugging Face Split pre-tokenizer with behaviour "Isolated": every regex match is a piece, and so is every gap
/// between matches. Runs on .NET Regex, whose \p classes see UTF-16 units (astral letters are not \p{L} there).
/// </summary>
internal sealed class RegexPreTokenizer(string pattern) : PreTokenizer
{
    // A pattern from a file could backtrack catastrophically; a timeout turns a hang into a RegexMatchTimeoutException.
    private readonly Regex _regex = new(pattern, RegexOptions.CultureInvariant, TimeSpan.FromSeconds(5));

    public override void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        int position = 0;
        foreach (var match in _regex.EnumerateMatches(text))
        {
            if (match.Length == 0) continue;
            if (match.Index > position) pieces.Add((position, match.Index - position));
            pieces.Add((match.Index, match.Length));
            position = match.Index + match.Length;
        }
        if (position < text.Length) pieces.Add((position, text.Length - position));
    }
}

/// <summary>Unicode classes the GPT-2 and Llama-3 scanners need, per code point (astral planes included).</summary>
internal static class ScannerClass
{
    public const byte Letter = 1, Number = 2, Space = 4;

    private static readonly byte[] s_bmp = BuildBmp();

    /// <summary>Class of the code point at <paramref name="i"/> and its width in UTF-16 units.</summary>
    public static byte At(ReadOnlySpan<char> text, int i, out int width)
    {
        char c = text[i];
        if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
        {
            width = 2;
            return OfCategory(CharUnicodeInfo.GetUnicodeCategory(char.ConvertToUtf32(c, text[i + 1])));
        }
        width = 1;
        return s_bmp[c];
    }

    private static byte OfCategory(UnicodeCategory category) => category switch
    {
        UnicodeCategory.UppercaseLetter or UnicodeCategory.LowercaseLetter or UnicodeCategory.TitlecaseLetter
            or UnicodeCategory.ModifierLetter or UnicodeCategory.OtherLetter => Letter,
        UnicodeCategory.DecimalDigitNumber or UnicodeCategory.LetterNumber or UnicodeCategory.OtherNumber => Number,
        _ => 0,
    };

    private static byte[] BuildBmp()
    {
        var table = new byte[0x10000];
        for (int c = 0; c < table.Length; c++)
        {
            table[c] = char.IsWhiteSpace((char)c) ? Space : OfCategory(CharUnicodeInfo.GetUnicodeCategory((char)c));
        }
        return table;
    }

    /// <summary>End of the run of whitespace starting at <paramref name="i"/> (whitespace is always one unit wide).</summary>
    public static int SpaceRunEnd(ReadOnlySpan<char> text, int i)
    {
        while (i < text.Length && text[i] < 0x10000 && s_bmp[text[i]] == Space) i++;
        return i;
    }

    /// <summary>End of a run of code points of class <paramref name="cls"/> starting at <paramref name="i"/>, at most <paramref name="max"/> of them.</summary>
    public static int RunEnd(ReadOnlySpan<char> text, int i, byte cls, int max = int.MaxValue)
    {
        for (int n = 0; n < max && i < text.Length && At(text, i, out int width) == cls; n++) i += width;
        return i;
    }

    /// <summary>End of a run of code points that are neither letters, numbers nor whitespace.</summary>
    public static int OtherRunEnd(ReadOnlySpan<char> text, int i)
    {
        while (i < text.Length && At(text, i, out int width) == 0) i += width;
        return i;
    }

    /// <summary>
    /// The whitespace alternatives shared by both patterns: <c>\s+(?!\S)</c> (a run minus its last character when a
    /// non-space follows, if that leaves something), else <c>\s+</c>.
    /// </summary>
    public static int TrailingSpaceMatch(ReadOnlySpan<char> text, int i)
    {
        int end = SpaceRunEnd(text, i);
        return end == text.Length || end - i < 2 ? end : end - 1;
    }
}
