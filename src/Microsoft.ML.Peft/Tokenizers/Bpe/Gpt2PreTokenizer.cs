namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// A hand-written scanner equal to GPT-2's regex
/// <c>'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+</c>
/// (alternatives tried in order at each position, as a backtracking engine does). It allocates nothing and classifies
/// code points, so astral letters count as \p{L} as they do in Python's regex and Rust's onig.
/// </summary>
internal sealed class Gpt2PreTokenizer : PreTokenizer
{
    public override void Split(ReadOnlySpan<char> text, List<(int Start, int Length)> pieces)
    {
        int i = 0;
        while (i < text.Length)
        {
            int end = Match(text, i);
            pieces.Add((i, end - i));
            i = end;
        }
    }

    private static int Match(ReadOnlySpan<char> text, int i)
    {
        if (text[i] == '\'' && i + 1 < text.Length)
        {
            char a = text[i + 1];
            if (a is 's' or 't' or 'm' or 'd') return i + 2;
            if (i + 2 < text.Length)
            {
                char b = text[i + 2];
                if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return i + 3;
            }
        }
        int j = text[i] == ' ' && i + 1 < text.Length ? i + 1 : i;
        byte cls = ScannerClass.At(text, j, out _);
        if (j == i && cls == ScannerClass.Space) return ScannerClass.TrailingSpaceMatch(text, i);
        if (cls == ScannerClass.Letter || cls == ScannerClass.Number) return ScannerClass.RunEnd(text, j, cls);
        if (cls == 0) return ScannerClass.OtherRunEnd(text, j);
        // A space followed by whitespace: the optional-space alternatives fail, the whitespace ones apply.
        return ScannerClass.TrailingSpaceMatch(text, i);
    }
}
