using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>Reads tokenizer files into memory with errors that name the file (and the line, for text files).</summary>
internal static class TokenizerFiles
{
    private static readonly UTF8Encoding s_strictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Reads a whole file; a missing file is a <see cref="FileNotFoundException"/> naming it.</summary>
    public static byte[] ReadAllBytes(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"Tokenizer file not found: {path}", path);
        return File.ReadAllBytes(path);
    }

    /// <summary>Reads a stream to its end.</summary>
    public static byte[] ReadAllBytes(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>
    /// Decodes strict UTF-8 (a leading BOM is skipped) and splits into lines on '\n', dropping a trailing '\r' per line
    /// and the empty piece after a final newline, like Python's readlines/rstrip.
    /// </summary>
    public static List<string> ReadLines(byte[] bytes, string sourceName)
    {
        string text = DecodeUtf8(bytes, sourceName);
        var lines = new List<string>();
        int start = 0;
        while (start < text.Length)
        {
            int newline = text.IndexOf('\n', start);
            int end = newline < 0 ? text.Length : newline;
            int trimmedEnd = end > start && text[end - 1] == '\r' ? end - 1 : end;
            lines.Add(text[start..trimmedEnd]);
            if (newline < 0) break;
            start = newline + 1;
        }
        return lines;
    }

    /// <summary>Strict UTF-8 decoding; invalid bytes are a <see cref="TokenizerFormatException"/> naming the line.</summary>
    public static string DecodeUtf8(byte[] bytes, string sourceName)
    {
        ReadOnlySpan<byte> span = bytes;
        if (span.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) span = span[3..];
        try
        {
            return s_strictUtf8.GetString(span);
        }
        catch (DecoderFallbackException e)
        {
            int index = Math.Clamp(e.Index, 0, span.Length);
            int line = 1 + span[..index].Count((byte)'\n');
            throw new TokenizerFormatException(sourceName, $"line {line}", "invalid UTF-8", e);
        }
    }
}
