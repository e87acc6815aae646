using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Microsoft.ML.Peft.IO.Pickle;

/// <summary>One member of a zip archive, with the offset of its (possibly compressed) data.</summary>
internal sealed record ZipEntry(string Name, int Method, long CompressedSize, long UncompressedSize, long DataOffset);

/// <summary>
/// Reads the central directory of a zip archive (including Zip64 records, which PyTorch always writes) and checks
/// it before anything else is read: entries must lie inside the file and before the directory, names must be
/// relative paths without <c>..</c>, encryption is refused, and only stored (0) and deflated (8) entries are allowed.
/// PyTorch writes entries stored and 64-byte aligned, which is what lets the tensor data be memory-mapped in place.
/// </summary>
internal static class ZipDirectory
{
    private const uint EndOfCentralDirectorySignature = 0x06054b50;
    private const uint Zip64LocatorSignature = 0x07064b50;
    private const uint Zip64EndSignature = 0x06064b50;
    private const uint CentralHeaderSignature = 0x02014b50;
    private const uint LocalHeaderSignature = 0x04034b50;
    private const long MaxCentralDirectoryBytes = 256L << 20;

    public static List<ZipEntry> Read(SafeFileHandle file, long length, string path)
    {
        // The end record is 22 bytes plus a comment of at most 65535 bytes at the very end of the file.
        int tailLength = (int)Math.Min(length, 22 + 65535);
        var tail = new byte[tailLength];
        ReadExactly(file, tail, length - tailLength, path);
        int eocd = -1;
        for (int i = tailLength - 22; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EndOfCentralDirectorySignature
                && i + 22 + BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(i + 20)) == tailLength)
            {
                eocd = i;
                break;
            }
        }
        if (eocd < 0) throw Error(path, "not a zip archive (no end-of-central-directory record)");
        long eocdPosition = length - tailLength + eocd;

        var record = tail.AsSpan(eocd);
        long entryCount = BinaryPrimitives.ReadUInt16LittleEndian(record[10..]);
        long directorySize = BinaryPrimitives.ReadUInt32LittleEndian(record[12..]);
        long directoryOffset = BinaryPrimitives.ReadUInt32LittleEndian(record[16..]);
        long directoryEnd = eocdPosition;

        if (eocd >= 20 && BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(eocd - 20)) == Zip64LocatorSignature)
        {
            long zip64End = BinaryPrimitives.ReadInt64LittleEndian(tail.AsSpan(eocd - 20 + 8));
            if (zip64End < 0 || zip64End > eocdPosition - 20 - 56) throw Error(path, "Zip64 end record offset is outside the file");
            var z = new byte[56];
            ReadExactly(file, z, zip64End, path);
            if (BinaryPrimitives.ReadUInt32LittleEndian(z) != Zip64EndSignature) throw Error(path, "Zip64 end record signature missing");
            entryCount = BinaryPrimitives.ReadInt64LittleEndian(z.AsSpan(32));
            directorySize = BinaryPrimitives.ReadInt64LittleEndian(z.AsSpan(40));
            directoryOffset = BinaryPrimitives.ReadInt64LittleEndian(z.AsSpan(48));
            directoryEnd = zip64End;
        }

        if (directorySize < 0 || directoryOffset < 0 || directorySize > MaxCentralDirectoryBytes
            || directoryOffset > directoryEnd - directorySize)
            throw Error(path, $"central directory [{directoryOffset}, +{directorySize}) is outside the file or larger than {MaxCentralDirectoryBytes} bytes");
        if (entryCount < 0 || entryCount > directorySize / 46)
            throw Error(path, $"central directory claims {entryCount} entries in {directorySize} bytes");

        var directory = new byte[directorySize];
        ReadExactly(file, directory, directoryOffset, path);
        var entries = new List<ZipEntry>((int)entryCount);
        int p = 0;
        for (long i = 0; i < entryCount; i++)
        {
            if (p > directory.Length - 46 || BinaryPrimitives.ReadUInt32LittleEndian(directory.AsSpan(p)) != CentralHeaderSignature)
                throw Error(path, $"central directory entry {i} is malformed");
            var h = directory.AsSpan(p);
            int flags = BinaryPrimitives.ReadUInt16LittleEndian(h[8..]);
            int method = BinaryPrimitives.ReadUInt16LittleEndian(h[10..]);
            long compressed = BinaryPrimitives.ReadUInt32LittleEndian(h[20..]);
            long uncompressed = BinaryPrimitives.ReadUInt32LittleEndian(h[24..]);
            int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
            int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[30..]);
            int commentLength = BinaryPrimitives.ReadUInt16LittleEndian(h[32..]);
            long localOffset = BinaryPrimitives.ReadUInt32LittleEndian(h[42..]);
            if (p + 46L + nameLength + extraLength + commentLength > directory.Length)
                throw Error(path, $"central directory entry {i} runs past the directory");
            string name = Encoding.UTF8.GetString(h.Slice(46, nameLength));
            ReadZip64Extra(h.Slice(46 + nameLength, extraLength), ref uncompressed, ref compressed, ref localOffset);
            p += 46 + nameLength + extraLength + commentLength;

            CheckName(name, path);
            if ((flags & 1) != 0) throw Error(path, $"entry '{name}' is encrypted");
            if (method != 0 && method != 8) throw Error(path, $"entry '{name}' uses compression method {method}; only stored (0) and deflate (8) are supported");
            if (method == 0 && compressed != uncompressed) throw Error(path, $"stored entry '{name}' has compressed size {compressed} ≠ size {uncompressed}");
            if (localOffset < 0 || localOffset > directoryOffset - 30) throw Error(path, $"entry '{name}' starts outside the archive data");

            long dataOffset = ReadLocalHeader(file, localOffset, name, path);
            if (compressed < 0 || uncompressed < 0 || dataOffset > directoryOffset - compressed)
                throw Error(path, $"entry '{name}' data [{dataOffset}, +{compressed}) overlaps the central directory or the end of the file");
            entries.Add(new ZipEntry(name, method, compressed, uncompressed, dataOffset));
        }
        return entries;
    }

    /// <summary>Reads an entry completely (stored or deflated) into a new array; only for small entries such as data.pkl.</summary>
    public static byte[] ReadEntry(SafeFileHandle file, ZipEntry entry, long maxBytes, string path)
    {
        if (entry.UncompressedSize > maxBytes) throw Error(path, $"entry '{entry.Name}' is {entry.UncompressedSize} bytes; refusing more than {maxBytes}");
        return Inflate(file, entry, path);
    }

    /// <summary>The entry's content; deflated entries are decompressed, never to more than the declared size.</summary>
    public static byte[] Inflate(SafeFileHandle file, ZipEntry entry, string path)
    {
        if (entry.UncompressedSize > Array.MaxLength || entry.CompressedSize > Array.MaxLength)
            throw Error(path, $"entry '{entry.Name}' is {entry.UncompressedSize} bytes; entries over 2 GiB must be stored uncompressed (as torch.save writes them)");
        var result = GC.AllocateUninitializedArray<byte>((int)entry.UncompressedSize, pinned: true);
        if (entry.Method == 0)
        {
            ReadExactly(file, result, entry.DataOffset, path);
            return result;
        }
        var compressed = new byte[(int)entry.CompressedSize];
        ReadExactly(file, compressed, entry.DataOffset, path);
        using var inflater = new System.IO.Compression.DeflateStream(new MemoryStream(compressed), System.IO.Compression.CompressionMode.Decompress);
        int read = inflater.ReadAtLeast(result, result.Length, throwOnEndOfStream: false);
        if (read != result.Length || inflater.ReadByte() != -1)
            throw Error(path, $"deflated entry '{entry.Name}' does not decompress to its declared {entry.UncompressedSize} bytes");
        return result;
    }

    private static void ReadZip64Extra(ReadOnlySpan<byte> extra, ref long uncompressed, ref long compressed, ref long localOffset)
    {
        while (extra.Length >= 4)
        {
            int id = BinaryPrimitives.ReadUInt16LittleEndian(extra);
            int size = BinaryPrimitives.ReadUInt16LittleEndian(extra[2..]);
            if (size > extra.Length - 4) return;
            var body = extra.Slice(4, size);
            if (id == 1)
            {
                // Only the fields saturated at 0xFFFFFFFF in the fixed header appear, in this order.
                int q = 0;
                if (uncompressed == uint.MaxValue && q + 8 <= body.Length) { uncompressed = BinaryPrimitives.ReadInt64LittleEndian(body[q..]); q += 8; }
                if (compressed == uint.MaxValue && q + 8 <= body.Length) { compressed = BinaryPrimitives.ReadInt64LittleEndian(body[q..]); q += 8; }
                if (localOffset == uint.MaxValue && q + 8 <= body.Length) localOffset = BinaryPrimitives.ReadInt64LittleEndian(body[q..]);
                return;
            }
            extra = extra[(4 + size)..];
        }
    }

    private static long ReadLocalHeader(SafeFileHandle file, long offset, string name, string path)
    {
        Span<byte> h = stackalloc byte[30];
        ReadExactly(file, h, offset, path);
        if (BinaryPrimitives.ReadUInt32LittleEndian(h) != LocalHeaderSignature)
            throw Error(path, $"entry '{name}': local header signature missing at offset {offset}");
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(h[26..]);
        int extraLength = BinaryPrimitives.ReadUInt16LittleEndian(h[28..]);
        var localName = new byte[nameLength];
        ReadExactly(file, localName, offset + 30, path);
        if (Encoding.UTF8.GetString(localName) != name)
            throw Error(path, $"entry '{name}': local header names '{Encoding.UTF8.GetString(localName)}'");
        return offset + 30 + nameLength + extraLength;
    }

    private static void CheckName(string name, string path)
    {
        bool bad = name.Length == 0 || name.StartsWith('/') || name.Contains('\\') || name.Contains(':') || name.Contains('\0')
            || name.Split('/').Any(part => part == "..");
        if (bad) throw Error(path, $"entry name '{name}' is not a safe relative path");
    }

    private static void ReadExactly(SafeFileHandle file, Span<byte> buffer, long offset, string path)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            int n = RandomAccess.Read(file, buffer[done..], offset + done);
            if (n == 0) throw Error(path, $"unexpected end of file reading {buffer.Length} bytes at offset {offset}");
            done += n;
        }
    }

    private static PickleFormatException Error(string path, string detail) => new(path, detail);
}
