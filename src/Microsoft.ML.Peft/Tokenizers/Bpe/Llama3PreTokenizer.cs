namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// A hand-written scanner equal to Llama 3's regex
/// <c>(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+</c>
/// with the alternatives tried in order at each position. Case-insensitive contractions accept 'ſ' for 's', as Unicode
/// case folding (Python re, onig) does.
/// </summary>
internal sealed class Llama3PreTokenizer : PreTokenizer
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
        int contraction = Contraction(text, i);
        if (contraction > 0) return contraction;

        byte cls = ScannerClass.At(text, i, out int width);
        char c = text[i];
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (cls == ScannerClass.Letter) return ScannerClass.RunEnd(text, i, ScannerClass.Letter);
        if (c is not ('\r' or '\n') && cls != ScannerClass.Number && i + width < text.Length
            && ScannerClass.At(text, i + width, out _) == ScannerClass.Letter)
        {
            return ScannerClass.RunEnd(text, i + width, ScannerClass.Letter);
        }
        // \p{N}{1,3}
        if (cls == ScannerClass.Number) return ScannerClass.RunEnd(text, i, ScannerClass.Number, 3);
        //  ?[^\s\p{L}\p{N}]+[\r\n]*
        int j = c == ' ' && i + 1 < text.Length ? i + 1 : i;
        if (ScannerClass.At(text, j, out _) == 0)
        {
            int end = ScannerClass.OtherRunEnd(text, j);
            while (end < text.Length && text[end] is '\r' or '\n') end++;
            return end;
        }
        // \s*[\r\n]+ : the whitespace run up to and including its last line break.
        int runEnd = ScannerClass.SpaceRunEnd(text, i);
        for (int k = runEnd - 1; k >= i; k--)
        {
            if (text[k] is '\r' or '\n') return k + 1;
        }
        return ScannerClass.TrailingSpaceMatch(text, i);
    }

    private static int Contraction(ReadOnlySpan<char> text, int i)
    {
        if (text[i] != '\'' || i + 1 >= text.Length) return 0;
        char a = char.ToLowerInvariant(text[i + 1]);
        if (a is 's' or '\u017F' or 't' or 'm' or 'd') return i + 2;
        if (i + 2 >= text.Length) return 0;
        char b = char.ToLowerInvariant(text[i + 2]);
        return (a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l') ? i + 3 : 0;
    }
}
