using System.Collections.Concurrent;
using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// BERT's text normalisation (the Hugging Face <c>BertNormalizer</c>), applied per code point in this order:
/// clean text (drop NUL, U+FFFD and control characters; every whitespace character becomes ' '), pad CJK ideographs
/// with spaces, strip accents (NFD, then drop non-spacing marks), lower-case (full mapping, so U+0130 becomes
/// "i\u0307"). Every output unit remembers the original range it came from.
/// </summary>
/// <remarks>
/// ASCII takes a branch-light fast path; other code points go through a cache of their transformed strings, so NFD
/// and case mapping run once per distinct character, not once per occurrence. Working per code point equals
/// whole-string NFD here because every mark that canonical reordering could move is a non-spacing mark that is dropped.
/// </remarks>
internal sealed class BertNormalizer
{
    private static readonly ConcurrentDictionary<int, string> s_transformCache = new();

    private readonly bool _cleanText;
    private readonly bool _handleChineseChars;
    private readonly bool _stripAccents;
    private readonly bool _lowercase;

    public BertNormalizer(bool cleanText, bool handleChineseChars, bool stripAccents, bool lowercase)
    {
        _cleanText = cleanText;
        _handleChineseChars = handleChineseChars;
        _stripAccents = stripAccents;
        _lowercase = lowercase;
    }

    /// <summary>Normalises <paramref name="text"/> into <paramref name="output"/>; offsets are shifted by <paramref name="offset"/>.</summary>
    public void Normalize(ReadOnlySpan<char> text, int offset, NormalizedText output)
    {
        Span<char> units = stackalloc char[2];
        int i = 0;
        while (i < text.Length)
        {
            char c = text[i];
            int start = offset + i;
            if (c < 0x80)
            {
                i++;
                if (_cleanText)
                {
                    byte cls = BertCharClass.Of(c);
                    if (c == 0 || (cls & BertCharClass.Control) != 0) continue;
                    if ((cls & BertCharClass.Whitespace) != 0) c = ' ';
                }
                if (_lowercase && c is >= 'A' and <= 'Z') c = (char)(c | 0x20);
                output.Append(c, start, start + 1);
                continue;
            }

            // A lone surrogate decodes to U+FFFD, which clean-text drops like any replacement character.
            Rune.DecodeFromUtf16(text[i..], out Rune rune, out int used);
            i += used;
            int end = offset + i;
            int cp = rune.Value;
            byte flags = BertCharClass.Of(cp);
            if (_cleanText)
            {
                if (cp == 0xFFFD || (flags & BertCharClass.Control) != 0) continue;
                if ((flags & BertCharClass.Whitespace) != 0)
                {
                    output.Append(' ', start, end);
                    continue;
                }
            }
            bool chinese = _handleChineseChars && (flags & BertCharClass.Chinese) != 0;
            if (chinese) output.Append(' ', start, end);
            if (_stripAccents || _lowercase)
            {
                output.Append(Transform(cp).AsSpan(), start, end);
            }
            else
            {
                output.Append(units[..rune.EncodeToUtf16(units)], start, end);
            }
            if (chinese) output.Append(' ', start, end);
        }
    }

    private string Transform(int cp)
    {
        int key = (cp << 2) | (_stripAccents ? 2 : 0) | (_lowercase ? 1 : 0);
        if (s_transformCache.TryGetValue(key, out var cached)) return cached;
        string result = TransformUncached(cp, _stripAccents, _lowercase);
        s_transformCache.TryAdd(key, result);
        return result;
    }

    private static string TransformUncached(int cp, bool stripAccents, bool lowercase)
    {
        string s = new Rune(cp).ToString();
        if (stripAccents)
        {
            var kept = new StringBuilder();
            foreach (var r in s.Normalize(NormalizationForm.FormD).EnumerateRunes())
            {
                if ((BertCharClass.Of(r.Value) & BertCharClass.NonSpacingMark) == 0) kept.Append(r.ToString());
            }
            s = kept.ToString();
        }
        if (lowercase)
        {
            var lowered = new StringBuilder();
            foreach (var r in s.EnumerateRunes())
            {
                // U+0130 is the one code point whose full lower-case mapping differs from the simple one.
                if (r.Value == 0x130) lowered.Append("i\u0307");
                else lowered.Append(Rune.ToLowerInvariant(r).ToString());
            }
            s = lowered.ToString();
        }
        return s;
    }
}
