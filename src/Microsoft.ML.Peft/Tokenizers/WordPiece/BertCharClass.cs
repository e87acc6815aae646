using System.Globalization;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// Character classes of BERT's basic tokenizer, as the Hugging Face BertNormalizer / BertPreTokenizer define them.
/// BMP answers come from a 64 KiB table built once (one byte per UTF-16 unit), so the hot loop is a load and a mask.
/// </summary>
internal static class BertCharClass
{
    public const byte Control = 1;
    public const byte Whitespace = 2;
    public const byte Punctuation = 4;
    public const byte Chinese = 8;
    public const byte NonSpacingMark = 16;

    private static readonly byte[] s_bmp = BuildBmpTable();

    public static byte Of(int codePoint) => codePoint < 0x10000 ? s_bmp[codePoint] : Compute(codePoint);

    /// <summary>
    /// Control: general category C* (Cc, Cf, Cs, Co, Cn) except \t \n \r, which BERT counts as whitespace.
    /// Whitespace: \t \n \r and the Unicode White_Space property (Zs, Zl, Zp, U+0009..U+000D, U+0085).
    /// Punctuation: ASCII 33-47, 58-64, 91-96, 123-126 (so $ + &lt; = &gt; ^ ` | ~ count) and every Unicode P* category.
    /// Chinese: the CJK Unified Ideographs blocks BERT pads with spaces.
    /// </summary>
    private static byte Compute(int cp)
    {
        var category = CharUnicodeInfo.GetUnicodeCategory(cp);
        byte flags = 0;
        bool isTabOrNewline = cp is '\t' or '\n' or '\r';
        if (!isTabOrNewline && category is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned)
        {
            flags |= Control;
        }
        if (isTabOrNewline || (cp < 0x10000 ? char.IsWhiteSpace((char)cp) : false)) flags |= Whitespace;
        if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)
            || category is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
                or UnicodeCategory.OtherPunctuation)
        {
            flags |= Punctuation;
        }
        if (IsChinese(cp)) flags |= Chinese;
        if (category == UnicodeCategory.NonSpacingMark) flags |= NonSpacingMark;
        return flags;
    }

    private static bool IsChinese(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
        || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF)
        || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);

    private static byte[] BuildBmpTable()
    {
        var table = new byte[0x10000];
        for (int cp = 0; cp < table.Length; cp++) table[cp] = Compute(cp);
        return table;
    }
}
