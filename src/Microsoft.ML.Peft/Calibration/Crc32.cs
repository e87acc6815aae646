namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// CRC-32 as PNG (ISO 3309 / ITU-T V.42) defines it: reflected polynomial 0xEDB88320, initial value and final XOR
/// 0xFFFFFFFF. Byte-at-a-time with a 256-entry table, built once.
/// </summary>
internal static class Crc32
{
    private static readonly uint[] Table = BuildTable();

    /// <summary>Folds <paramref name="data"/> into a running CRC register (start with 0xFFFFFFFF, finish with ~).</summary>
    public static uint Update(uint register, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data) register = Table[(register ^ b) & 0xFF] ^ (register >> 8);
        return register;
    }

    /// <summary>The CRC-32 of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => ~Update(0xFFFFFFFFu, data);

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[n] = c;
        }
        return table;
    }
}
