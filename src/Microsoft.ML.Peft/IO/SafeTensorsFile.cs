using System.Diagnostics.CodeAnalysis;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// One <c>.safetensors</c> file, validated on open and then memory-mapped: no tensor bytes are read until a view is
/// used, F32 tensors are served straight from the mapping, and the whole file is released on <see cref="Dispose"/>.
/// </summary>
public sealed class SafeTensorsFile : ITensorSource
{
    private readonly TensorStorage _storage;
    private readonly Dictionary<string, TensorView> _byName;
    private readonly List<TensorView> _ordered;

    private SafeTensorsFile(string path, TensorStorage storage, long dataStart,
        List<SafeTensorsEntry> entries, Dictionary<string, string> metadata)
    {
        Path = path;
        _storage = storage;
        Metadata = metadata;
        _ordered = new List<TensorView>(entries.Count);
        _byName = new Dictionary<string, TensorView>(entries.Count, StringComparer.Ordinal);
        foreach (var e in entries)
        {
            var view = new TensorView(e.Name, e.DType, e.Shape, storage, dataStart + e.Begin);
            _ordered.Add(view);
            _byName.Add(e.Name, view);
        }
        Names = _ordered.ConvertAll(v => v.Name);
        DataStart = dataStart;
    }

    /// <summary>
    /// Opens and validates <paramref name="path"/>. Only the header is read; throws
    /// <see cref="SafeTensorsFormatException"/> naming the file and tensor when the header breaks a rule.
    /// </summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, bufferSize: 1);
        try
        {
            long length = stream.Length;
            Span<byte> prefix = stackalloc byte[8];
            int got = stream.ReadAtLeast(prefix, 8, throwOnEndOfStream: false);
            int n = SafeTensorsHeader.ReadHeaderLength(prefix[..got], length, path);
            var header = new byte[n];
            stream.ReadExactly(header);
            var (entries, metadata) = SafeTensorsHeader.Parse(header, length - 8 - n, path);
            var storage = new MappedFileStorage(path, stream);
            return new SafeTensorsFile(path, storage, 8 + n, entries, metadata);
        }
        catch
        {
            stream.Dispose();
            throw;
        }
    }

    /// <summary>Parses a whole safetensors file held in memory (e.g. a small downloaded adapter). The array is pinned, not copied.</summary>
    public static SafeTensorsFile FromBytes(byte[] data, string name = "<memory>")
    {
        ArgumentNullException.ThrowIfNull(data);
        int n = SafeTensorsHeader.ReadHeaderLength(data, data.LongLength, name);
        var (entries, metadata) = SafeTensorsHeader.Parse(data.AsSpan(8, n), data.LongLength - 8 - n, name);
        return new SafeTensorsFile(name, new PinnedArrayStorage(name, data), 8 + n, entries, metadata);
    }

    /// <inheritdoc />
    public string Path { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Names { get; }

    /// <inheritdoc />
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors in storage (offset) order.</summary>
    public IReadOnlyList<TensorView> Tensors => _ordered;

    /// <summary>Byte offset of the data area in the file (8 + header length).</summary>
    public long DataStart { get; }

    /// <inheritdoc />
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <inheritdoc />
    public TensorView GetTensor(string name) =>
        _byName.TryGetValue(name, out var view)
            ? view
            : throw new KeyNotFoundException($"{Path}: no tensor named '{name}' (the file has {_byName.Count} tensors)");

    /// <inheritdoc />
    public bool TryGetTensor(string name, [NotNullWhen(true)] out TensorView? tensor) => _byName.TryGetValue(name, out tensor);

    /// <summary>Unmaps the file; views from this source become unusable.</summary>
    public void Dispose() => _storage.Dispose();
}
