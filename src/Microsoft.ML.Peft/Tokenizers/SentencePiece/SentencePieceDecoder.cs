using System.Text;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Decoding of SentencePiece ids the way sentencepiece's DecodeIds does it: control pieces vanish, &lt;unk&gt; prints as
/// the model's unk_surface, runs of byte pieces are read as UTF-8 (each invalid byte becomes U+FFFD), "▁" becomes a
/// space, and the "▁" the dummy prefix put in front of the first word is removed (with remove_extra_whitespaces, every
/// leading "▁" until some text has been produced).
/// </summary>
internal static class SentencePieceDecoder
{
    public static string Decode(ReadOnlySpan<int> ids, SentencePieceBpeModel model, TokenVocabulary vocabulary, string unknownSurface,
        bool stripLeadingSpace, bool removeExtraWhitespaces, Func<int, bool>? skip)
    {
        var text = new StringBuilder();
        var bytes = new List<byte>();
        bool expectLeadingSpace = true, leadingSpaceSeen = false;
        foreach (int id in ids)
        {
            if (skip is not null && skip(id)) continue;
            if (id < model.PieceCount && model.TypeOf(id) == SentencePieceType.Byte)
            {
                bytes.Add((byte)model.ByteValue(id));
                continue;
            }
            AppendBytes(text, bytes);
            if (leadingSpaceSeen || text.Length > 0) expectLeadingSpace = false;
            leadingSpaceSeen = false;
            if (id >= model.PieceCount)
            {
                text.Append(vocabulary.GetToken(id));   // an added token outside the model
                continue;
            }
            switch (model.TypeOf(id))
            {
                case SentencePieceType.Control:
                    continue;
                case SentencePieceType.Unknown:
                    text.Append(unknownSurface);
                    continue;
            }
            var piece = model.PieceOf(id).AsSpan();
            if (expectLeadingSpace && stripLeadingSpace && piece.Length > 0 && piece[0] == '\u2581')
            {
                piece = piece[1..];
                leadingSpaceSeen = !removeExtraWhitespaces;
            }
            foreach (char c in piece) text.Append(c == '\u2581' ? ' ' : c);
        }
        AppendBytes(text, bytes);
        return text.ToString();
    }

    /// <summary>Appends UTF-8 bytes, one U+FFFD per byte that does not start a valid sequence (sentencepiece's rule).</summary>
    internal static void AppendBytes(StringBuilder text, List<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Count)
        {
            int length = ValidSequenceLength(bytes, i, out int codePoint);
            if (length == 0)
            {
                text.Append('\uFFFD');
                i++;
                continue;
            }
            text.Append(char.ConvertFromUtf32(codePoint));
            i += length;
        }
        bytes.Clear();
    }

    private static int ValidSequenceLength(List<byte> b, int i, out int cp)
    {
        int left = b.Count - i;
        byte b0 = b[i];
        cp = 0;
        if (b0 < 0x80)
        {
            cp = b0;
            return 1;
        }
        if (left >= 2 && (b0 & 0xE0) == 0xC0 && IsTrail(b[i + 1]))
        {
            cp = ((b0 & 0x1F) << 6) | (b[i + 1] & 0x3F);
            return cp >= 0x80 ? 2 : 0;
        }
        if (left >= 3 && (b0 & 0xF0) == 0xE0 && IsTrail(b[i + 1]) && IsTrail(b[i + 2]))
        {
            cp = ((b0 & 0x0F) << 12) | ((b[i + 1] & 0x3F) << 6) | (b[i + 2] & 0x3F);
            return cp >= 0x800 && IsValidCodePoint(cp) ? 3 : 0;
        }
        if (left >= 4 && (b0 & 0xF8) == 0xF0 && IsTrail(b[i + 1]) && IsTrail(b[i + 2]) && IsTrail(b[i + 3]))
        {
            cp = ((b0 & 0x07) << 18) | ((b[i + 1] & 0x3F) << 12) | ((b[i + 2] & 0x3F) << 6) | (b[i + 3] & 0x3F);
            return cp >= 0x10000 && IsValidCodePoint(cp) ? 4 : 0;
        }
        return 0;
    }

    private static bool IsTrail(byte b) => (b & 0xC0) == 0x80;

    private static bool IsValidCodePoint(int cp) => cp < 0xD800 || (cp >= 0xE000 && cp <= 0x10FFFF);
}
