namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>
/// GPT-2's reversible byte ↔ character table: the 188 printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for
/// themselves, the other 68 (controls, space, DEL, NBSP, soft hyphen) map to U+0100.. in byte order, so every byte
/// string becomes a string of visible characters (space → 'Ġ', newline → 'Ċ').
/// </summary>
internal static class ByteLevelAlphabet
{
    private static readonly char[] s_byteToChar = BuildByteToChar();
    private static readonly short[] s_charToByte = BuildCharToByte();

    public static char CharOf(byte b) => s_byteToChar[b];

    /// <summary>The byte a character stands for, or -1 when it is not in the alphabet.</summary>
    public static int ByteOf(char c) => c < s_charToByte.Length ? s_charToByte[c] : -1;

    private static char[] BuildByteToChar()
    {
        var table = new char[256];
        int extra = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            table[b] = printable ? (char)b : (char)(256 + extra++);
        }
        return table;
    }

    private static short[] BuildCharToByte()
    {
        var table = new short[256 + 68];
        Array.Fill(table, (short)-1);
        for (int b = 0; b < 256; b++) table[s_byteToChar[b]] = (short)b;
        return table;
    }
}
