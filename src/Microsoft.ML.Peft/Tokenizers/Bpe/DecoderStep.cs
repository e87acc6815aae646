using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// One step of a Hugging Face decoder chain. Each step rewrites the list of token strings (as <c>decode_chain</c>
/// does); decoding joins what is left. Supported: Replace, ByteFallback, Fuse, Strip, Metaspace, ByteLevel.
/// </summary>
internal abstract class DecoderStep
{
    public abstract void Apply(List<string> tokens);

    /// <summary>Runs <paramref name="steps"/> over <paramref name="tokens"/> and concatenates the result.</summary>
    public static string Decode(IReadOnlyList<DecoderStep> steps, List<string> tokens)
    {
        foreach (var step in steps) step.Apply(tokens);
        return string.Concat(tokens);
    }
}

/// <summary>Replaces a literal pattern inside every token (e.g. "▁" → " ").</summary>
internal sealed class ReplaceDecoderStep(string pattern, string content) : DecoderStep
{
    public override void Apply(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++) tokens[i] = tokens[i].Replace(pattern, content, StringComparison.Ordinal);
    }
}

/// <summary>Turns each run of &lt;0xNN&gt; tokens into the UTF-8 text they spell (one U+FFFD per token if invalid).</summary>
internal sealed class ByteFallbackDecoderStep : DecoderStep
{
    private static readonly UTF8Encoding s_strict = new(false, throwOnInvalidBytes: true);

    public override void Apply(List<string> tokens)
    {
        var output = new List<string>(tokens.Count);
        var bytes = new List<byte>();
        int run = 0;
        foreach (var token in tokens)
        {
            int value = SentencePieceBpeModel.ParseBytePiece(token);
            if (value >= 0)
            {
                bytes.Add((byte)value);
                run++;
                continue;
            }
            Flush(output, bytes, ref run);
            output.Add(token);
        }
        Flush(output, bytes, ref run);
        tokens.Clear();
        tokens.AddRange(output);
    }

    private static void Flush(List<string> output, List<byte> bytes, ref int run)
    {
        if (run == 0) return;
        try
        {
            output.Add(s_strict.GetString(bytes.ToArray()));
        }
        catch (DecoderFallbackException)
        {
            for (int i = 0; i < run; i++) output.Add("\uFFFD");
        }
        bytes.Clear();
        run = 0;
    }
}

/// <summary>Joins all tokens into one.</summary>
internal sealed class FuseDecoderStep : DecoderStep
{
    public override void Apply(List<string> tokens)
    {
        string joined = string.Concat(tokens);
        tokens.Clear();
        tokens.Add(joined);
    }
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from every token.</summary>
internal sealed class StripDecoderStep(char content, int start, int stop) : DecoderStep
{
    public override void Apply(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++)
        {
            string token = tokens[i];
            int from = 0, to = token.Length;
            while (from < Math.Min(start, token.Length) && token[from] == content) from++;
            int trailing = 0;
            while (trailing < stop && to > from && token[to - 1] == content)
            {
                to--;
                trailing++;
            }
            tokens[i] = token[from..to];
        }
    }
}

/// <summary>Metaspace: "▁" → " " in every token, and the first token loses a leading space when a prefix was added.</summary>
internal sealed class MetaspaceDecoderStep(char replacement, bool stripFirst) : DecoderStep
{
    public override void Apply(List<string> tokens)
    {
        for (int i = 0; i < tokens.Count; i++)
        {
            var sb = new StringBuilder(tokens[i].Length);
            foreach (char c in tokens[i]) sb.Append(c == replacement ? ' ' : c);
            if (i == 0 && stripFirst && sb.Length > 0 && sb[0] == ' ') sb.Remove(0, 1);
            tokens[i] = sb.ToString();
        }
    }
}

/// <summary>Byte-level: maps every character back to its byte (others to their own UTF-8) and decodes the whole as UTF-8.</summary>
internal sealed class ByteLevelDecoderStep : DecoderStep
{
    public override void Apply(List<string> tokens)
    {
        var bytes = new List<byte>();
        Span<byte> utf8 = stackalloc byte[4];
        foreach (var token in tokens)
        {
            foreach (var rune in token.EnumerateRunes())
            {
                int value = rune.Value < 0x10000 ? ByteLevelAlphabet.ByteOf((char)rune.Value) : -1;
                if (value >= 0)
                {
                    bytes.Add((byte)value);
                }
                else
                {
                    int n = rune.EncodeToUtf8(utf8);
                    for (int i = 0; i < n; i++) bytes.Add(utf8[i]);
                }
            }
        }
        tokens.Clear();
        tokens.Add(Encoding.UTF8.GetString(bytes.ToArray()));
    }
}
