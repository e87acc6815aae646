using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Diagnostics.CodeAnalysis;
using Microsoft.ML.Peft.IO.Pickle;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// A PyTorch checkpoint in the zip format written by <c>torch.save</c> since PyTorch 1.6 (<c>pytorch_model.bin</c>,
/// <c>*.pt</c>): <c>{top}/data.pkl</c> is a pickle of the state dict whose tensors point through persistent ids at
/// storages <c>{top}/data/{key}</c>. The pickle is run by a restricted interpreter (<see cref="PickleMachine"/>)
/// that only understands the tensor-rebuild protocol, so loading never executes code from the file.
/// </summary>
/// <remarks>
/// Storages are memory-mapped in place (PyTorch stores them uncompressed), so contiguous tensors are zero-copy like
/// safetensors; a non-contiguous view (e.g. a saved transpose) is gathered into a contiguous buffer on first access.
/// Nested dicts are flattened with "." (e.g. <c>{"model": {"w": t}}</c> → "model.w"); non-tensor values are skipped.
/// </remarks>
public sealed class TorchCheckpointFile : ITensorSource
{
    private const long MaxPickleBytes = 64L << 20;

    private readonly List<TensorStorage> _storages;
    private readonly ConcurrentBag<TensorStorage> _gathered;
    private readonly Dictionary<string, TensorView> _byName;

    private TorchCheckpointFile(string path, List<TensorStorage> storages, ConcurrentBag<TensorStorage> gathered,
        Dictionary<string, TensorView> byName, List<string> names)
    {
        Path = path;
        _storages = storages;
        _gathered = gathered;
        _byName = byName;
        Names = names;
    }

    /// <summary>
    /// Opens and validates a checkpoint: zip structure, pickle (restricted), every tensor's extent inside its storage.
    /// Throws <see cref="PickleFormatException"/> naming the file and, where relevant, the tensor or refused global.
    /// </summary>
    public static TorchCheckpointFile Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var storages = new List<TensorStorage>();
        try
        {
            var archive = TorchArchive.Read(handle, path);
            var refs = new Dictionary<string, TorchStorageRef>(StringComparer.Ordinal);
            var machine = new PickleMachine(archive.Pickle, path, pid => archive.LoadStorage(pid, refs));
            var tensors = Flatten(machine.Run(), path);

            // Map the file once for all stored storages; deflated ones (rare: re-zipped files) are decompressed.
            TensorStorage? mapped = null;
            var backing = new Dictionary<string, (TensorStorage Storage, long Offset)>(StringComparer.Ordinal);
            foreach (var (key, _) in refs)
            {
                var entry = archive.StorageEntry(key);
                if (entry.Method == 0)
                {
                    mapped ??= Track(storages, new MappedFileStorage(path, new FileStream(handle, FileAccess.Read, 1)));
                    backing[key] = (mapped, entry.DataOffset);
                }
                else
                {
                    backing[key] = (Track(storages, new PinnedArrayStorage(path, ZipDirectory.Inflate(handle, entry, path))), 0);
                }
            }
            if (mapped is null) handle.Dispose();

            var gathered = new ConcurrentBag<TensorStorage>();
            var byName = new Dictionary<string, TensorView>(StringComparer.Ordinal);
            var names = new List<string>(tensors.Count);
            foreach (var (name, tensor) in tensors)
            {
                var (storage, offset) = backing[tensor.Storage.Key];
                byName.Add(name, MakeView(name, tensor, storage, offset, gathered, path));
                names.Add(name);
            }
            return new TorchCheckpointFile(path, storages, gathered, byName, names);
        }
        catch
        {
            foreach (var s in storages) s.Dispose();
            handle.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public string Path { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Names { get; }

    /// <summary>Always empty: PyTorch checkpoints carry no string metadata.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();

    /// <inheritdoc />
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <inheritdoc />
    public TensorView GetTensor(string name) =>
        _byName.TryGetValue(name, out var view)
            ? view
            : throw new KeyNotFoundException($"{Path}: no tensor named '{name}' (the checkpoint has {_byName.Count} tensors)");

    /// <inheritdoc />
    public bool TryGetTensor(string name, [NotNullWhen(true)] out TensorView? tensor) => _byName.TryGetValue(name, out tensor);

    /// <summary>Unmaps the file and frees gathered copies; views from this source become unusable.</summary>
    public void Dispose()
    {
        foreach (var s in _storages) s.Dispose();
        foreach (var s in _gathered) s.Dispose();
    }

    private static TensorStorage Track(List<TensorStorage> storages, TensorStorage storage)
    {
        storages.Add(storage);
        return storage;
    }

    private static TensorView MakeView(string name, TorchTensorRef t, TensorStorage storage, long storageStart,
        ConcurrentBag<TensorStorage> gathered, string path)
    {
        var dtype = t.Storage.DType;
        int elementSize = dtype.SizeInBytes();
        if (t.Size.Length != t.Stride.Length)
            throw new PickleFormatException(path, $"size has {t.Size.Length} dimensions but stride has {t.Stride.Length}", name);
        var shape = ImmutableArray.CreateBuilder<int>(t.Size.Length);
        long count = 1, last = t.StorageOffset;
        bool contiguous = true;
        long expectedStride = 1;
        try
        {
            for (int d = t.Size.Length - 1; d >= 0; d--)
            {
                long size = t.Size[d], stride = t.Stride[d];
                if (size < 0 || size > int.MaxValue || stride < 0)
                    throw new PickleFormatException(path, $"dimension {d} has size {size} and stride {stride}", name);
                if (size != 1 && stride != expectedStride) contiguous = false;
                expectedStride = checked(expectedStride * size);
                count = checked(count * size);
                if (size > 0) last = checked(last + (size - 1) * stride);
            }
        }
        catch (OverflowException)
        {
            throw new PickleFormatException(path, "size × stride overflows 64 bits", name);
        }
        for (int d = 0; d < t.Size.Length; d++) shape.Add((int)t.Size[d]);

        if (t.StorageOffset < 0 || (count > 0 ? last >= t.Storage.ElementCount : t.StorageOffset > t.Storage.ElementCount))
            throw new PickleFormatException(path,
                $"view (offset {t.StorageOffset}, size [{string.Join(", ", t.Size)}], stride [{string.Join(", ", t.Stride)}]) " +
                $"reaches past its storage '{t.Storage.Key}' of {t.Storage.ElementCount} elements", name);

        long byteOffset = storageStart + t.StorageOffset * elementSize;
        if (contiguous) return new TensorView(name, dtype, shape.MoveToImmutable(), storage, byteOffset);
        return new TensorView(name, dtype, shape.MoveToImmutable(), () =>
        {
            var copy = new PinnedArrayStorage(path, Gather(storage, byteOffset, t.Size, t.Stride, elementSize, count));
            gathered.Add(copy);
            return copy;
        });
    }

    /// <summary>Copies a strided view into row-major order, one element at a time (rare, and only once per tensor).</summary>
    private static unsafe byte[] Gather(TensorStorage storage, long byteOffset, long[] size, long[] stride, int elementSize, long count)
    {
        var result = GC.AllocateUninitializedArray<byte>(checked((int)(count * elementSize)), pinned: true);
        if (count == 0) return result;
        byte* source = storage.Pointer + byteOffset;
        var index = new long[size.Length];
        long sourceElement = 0;
        fixed (byte* target = result)
        {
            for (long i = 0; i < count; i++)
            {
                Buffer.MemoryCopy(source + sourceElement * elementSize, target + i * elementSize, elementSize, elementSize);
                // Odometer increment of the multi-index, keeping the source element offset in step.
                for (int d = size.Length - 1; d >= 0; d--)
                {
                    if (++index[d] < size[d]) { sourceElement += stride[d]; break; }
                    sourceElement -= (size[d] - 1) * stride[d];
                    index[d] = 0;
                }
            }
        }
        return result;
    }

    private static List<(string Name, TorchTensorRef Tensor)> Flatten(object? root, string path)
    {
        if (root is TorchTensorRef single) return [("", single)];
        if (root is not PickleDict dict)
            throw new PickleFormatException(path, $"the pickled object is a {root?.GetType().Name ?? "None"}, not a state dict");
        var result = new List<(string, TorchTensorRef)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        Walk(dict, "", 0);
        return result;

        void Walk(PickleDict d, string prefix, int depth)
        {
            if (depth > 16) throw new PickleFormatException(path, "dicts nested more than 16 deep (or a cycle)");
            foreach (var (key, value) in d.Items)
            {
                string name = prefix + (key as string ?? Convert.ToString(key, System.Globalization.CultureInfo.InvariantCulture));
                if (value is TorchTensorRef tensor)
                {
                    if (!names.Add(name)) throw new PickleFormatException(path, "two entries flatten to the same name", name);
                    result.Add((name, tensor));
                }
                else if (value is PickleDict inner)
                {
                    Walk(inner, name + ".", depth + 1);
                }
            }
        }
    }
}
