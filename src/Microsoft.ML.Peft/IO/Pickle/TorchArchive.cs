using Microsoft.Win32.SafeHandles;

namespace Microsoft.ML.Peft.IO.Pickle;

/// <summary>
/// The zip layout of a <c>torch.save</c> file: every entry under one top folder, the pickle at
/// <c>{top}/data.pkl</c>, storages at <c>{top}/data/{key}</c>, and an optional <c>{top}/byteorder</c> that must say
/// "little". Also resolves persistent ids to storages, checking each against its zip entry.
/// </summary>
internal sealed class TorchArchive
{
    private readonly Dictionary<string, ZipEntry> _entries;
    private readonly string _top;
    private readonly string _path;

    private TorchArchive(Dictionary<string, ZipEntry> entries, string top, byte[] pickle, string path)
    {
        _entries = entries;
        _top = top;
        Pickle = pickle;
        _path = path;
    }

    public byte[] Pickle { get; }

    public static TorchArchive Read(SafeFileHandle handle, string path)
    {
        long length = RandomAccess.GetLength(handle);
        Span<byte> magic = stackalloc byte[4];
        if (RandomAccess.Read(handle, magic, 0) < 4 || magic[0] != (byte)'P' || magic[1] != (byte)'K')
            throw new PickleFormatException(path,
                "not a zip archive: checkpoints written by torch.save before PyTorch 1.6 (legacy pickle format) are not supported; " +
                "re-save with a recent torch.save or convert to safetensors");
        var entries = new Dictionary<string, ZipEntry>(StringComparer.Ordinal);
        string? top = null;
        foreach (var entry in ZipDirectory.Read(handle, length, path))
        {
            int slash = entry.Name.IndexOf('/');
            if (slash <= 0) throw new PickleFormatException(path, $"zip entry '{entry.Name}' is not inside a top folder, as torch.save writes them");
            string prefix = entry.Name[..slash];
            top ??= prefix;
            if (prefix != top) throw new PickleFormatException(path, $"zip entries are in two top folders ('{top}' and '{prefix}')");
            if (!entries.TryAdd(entry.Name, entry)) throw new PickleFormatException(path, $"zip entry '{entry.Name}' appears twice");
        }
        if (top is null || !entries.TryGetValue($"{top}/data.pkl", out var pickleEntry))
            throw new PickleFormatException(path,
                "no '<folder>/data.pkl' in the archive: not a PyTorch ≥ 1.6 zip checkpoint (re-save it with a recent torch.save or convert it to safetensors)");
        if (entries.TryGetValue($"{top}/byteorder", out var byteOrder))
        {
            string order = System.Text.Encoding.ASCII.GetString(ZipDirectory.ReadEntry(handle, byteOrder, 16, path)).Trim();
            if (order != "little") throw new PickleFormatException(path, $"byteorder is '{order}'; only little-endian checkpoints are supported");
        }
        return new TorchArchive(entries, top, ZipDirectory.ReadEntry(handle, pickleEntry, 64L << 20, path), path);
    }

    public ZipEntry StorageEntry(string key) => _entries[$"{_top}/data/{key}"];

    /// <summary>Persistent id <c>('storage', storage_type, key, location, numel)</c> → a checked storage reference.</summary>
    public TorchStorageRef LoadStorage(PickleTuple pid, Dictionary<string, TorchStorageRef> known)
    {
        var p = pid.Items;
        if (p.Length != 5 || p[0] is not "storage")
            throw new PickleFormatException(_path, $"persistent id has {p.Length} fields; expected ('storage', type, key, location, numel)");
        var dtype = TorchGlobals.StorageDType(p[1], _path);
        if (p[2] is not string key || key.Length == 0 || key.Contains('/') || key.Contains('\\') || key is "." or "..")
            throw new PickleFormatException(_path, $"storage key '{p[2]}' is not a plain entry name");
        if (p[4] is not long count || count < 0)
            throw new PickleFormatException(_path, $"storage '{key}' has element count '{p[4]}'");
        if (known.TryGetValue(key, out var existing))
        {
            if (existing.DType != dtype || existing.ElementCount != count)
                throw new PickleFormatException(_path, $"storage '{key}' is referenced with two different types or sizes");
            return existing;
        }
        if (!_entries.TryGetValue($"{_top}/data/{key}", out var entry))
            throw new PickleFormatException(_path, $"storage '{key}' has no zip entry '{_top}/data/{key}'");
        long needed;
        try
        {
            needed = checked(count * dtype.SizeInBytes());
        }
        catch (OverflowException)
        {
            throw new PickleFormatException(_path, $"storage '{key}' size overflows");
        }
        if (entry.UncompressedSize < needed)
            throw new PickleFormatException(_path, $"storage '{key}' needs {needed} bytes ({count} × {dtype.ToSafeTensorsName()}) but its entry holds {entry.UncompressedSize}");
        var storage = new TorchStorageRef(key, dtype, count);
        known.Add(key, storage);
        return storage;
    }
}
