using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// The bytes behind one or more <see cref="TensorView"/>s: a read-only memory-mapped file or a pinned managed array.
/// Disposing it invalidates every view over it; views check <see cref="Pointer"/> on each access so that a use after
/// disposal throws instead of reading unmapped memory.
/// </summary>
internal abstract unsafe class TensorStorage : IDisposable
{
    private int _disposed;

    protected TensorStorage(string origin) => Origin = origin;

    /// <summary>File path (or in-memory name) for error messages.</summary>
    public string Origin { get; }

    /// <summary>Total number of addressable bytes.</summary>
    public abstract long Length { get; }

    /// <summary>Address of byte 0; throws <see cref="ObjectDisposedException"/> once disposed.</summary>
    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
            return BasePointer;
        }
    }

    protected abstract byte* BasePointer { get; }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) Release();
    }

    protected abstract void Release();
}

/// <summary>
/// A whole file mapped privately (copy-on-write). The OS pages data in on first touch, so opening costs no reads.
/// Copy-on-write rather than read-only because model weights are used zero-copy as engine tensors: a trainable
/// parameter over the mapping may be updated in place by an optimizer, which must neither fault on a read-only page
/// nor reach the file (a written page becomes a private copy; untouched pages stay shared with the page cache).
/// </summary>
internal sealed unsafe class MappedFileStorage : TensorStorage
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;
    private readonly byte* _pointer;

    /// <summary>Maps <paramref name="stream"/> (already validated by the caller) and takes ownership of it.</summary>
    public MappedFileStorage(string path, FileStream stream) : base(path)
    {
        Length = stream.Length;
        _file = MemoryMappedFile.CreateFromFile(
            stream, mapName: null, capacity: 0, MemoryMappedFileAccess.CopyOnWrite, HandleInheritability.None, leaveOpen: false);
        try
        {
            _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.CopyOnWrite);
            byte* p = null;
            _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            _pointer = p + _view.PointerOffset;
        }
        catch
        {
            _file.Dispose();
            throw;
        }
    }

    public override long Length { get; }

    protected override byte* BasePointer => _pointer;

    protected override void Release()
    {
        _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}

/// <summary>A managed byte array pinned for the storage's lifetime (in-memory files, decompressed zip entries).</summary>
internal sealed unsafe class PinnedArrayStorage : TensorStorage
{
    private readonly byte[] _array;
    private GCHandle _handle;

    public PinnedArrayStorage(string origin, byte[] array) : base(origin)
    {
        _array = array;
        _handle = GCHandle.Alloc(array, GCHandleType.Pinned);
    }

    public override long Length => _array.LongLength;

    protected override byte* BasePointer => (byte*)_handle.AddrOfPinnedObject();

    protected override void Release() => _handle.Free();
}
