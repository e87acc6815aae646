using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// Minimal PNG writer (PNG spec, ISO/IEC 15948): signature, IHDR (8-bit truecolour RGB, no interlace), optional tEXt
/// chunks, one IDAT holding the zlib stream (<see cref="ZLibStream"/>: deflate with zlib header and Adler-32) of the
/// scanlines, each prefixed with filter type 0 (None), and IEND; every chunk carries its CRC-32 over type and data.
/// </summary>
internal static class PngEncoder
{
    private static readonly byte[] Signature = [0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A];

    public static byte[] Encode(RgbImage image, IReadOnlyList<KeyValuePair<string, string>>? text = null)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var output = new MemoryStream();
        output.Write(Signature);

        var header = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(header, image.Width);
        BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), image.Height);
        header[8] = 8;  // bit depth
        header[9] = 2;  // colour type: truecolour
        header[10] = 0; // compression: deflate
        header[11] = 0; // filter method 0
        header[12] = 0; // no interlace
        WriteChunk(output, "IHDR", header);

        foreach ((string keyword, string value) in text ?? [])
        {
            // tEXt: Latin-1 keyword (1–79 chars), a zero byte, Latin-1 text. Anything else becomes '?'.
            if (keyword.Length is < 1 or > 79) throw new ArgumentException($"PNG text keyword '{keyword}' must have 1–79 characters.", nameof(text));
            byte[] data = [.. Latin1(keyword), 0, .. Latin1(value)];
            WriteChunk(output, "tEXt", data);
        }

        using (var compressed = new MemoryStream())
        {
            using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
            {
                int stride = image.Width * 3;
                for (int y = 0; y < image.Height; y++)
                {
                    zlib.WriteByte(0); // filter: None
                    zlib.Write(image.Pixels, y * stride, stride);
                }
            }
            WriteChunk(output, "IDAT", compressed.ToArray());
        }
        WriteChunk(output, "IEND", []);
        return output.ToArray();
    }

    private static void WriteChunk(Stream output, string type, ReadOnlySpan<byte> data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        output.Write(word);
        Span<byte> typeBytes = stackalloc byte[4];
        Encoding.ASCII.GetBytes(type, typeBytes);
        output.Write(typeBytes);
        output.Write(data);
        uint crc = ~Crc32.Update(Crc32.Update(0xFFFFFFFFu, typeBytes), data);
        BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        output.Write(word);
    }

    private static byte[] Latin1(string s)
    {
        var bytes = new byte[s.Length];
        for (int i = 0; i < s.Length; i++) bytes[i] = s[i] is >= ' ' and <= '~' or >= '\u00A1' and <= '\u00FF' ? (byte)s[i] : (byte)'?';
        return bytes;
    }
}
