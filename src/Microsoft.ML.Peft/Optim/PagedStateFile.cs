using System.IO.MemoryMappedFiles;

namespace Microsoft.ML.Peft.Optim;

/// <summary>
/// The CPU analogue of bitsandbytes' paged optimizer memory: one sparse temporary file, memory-mapped read/write,
/// from which optimizer state buffers are carved. The pages are backed by the file rather than by anonymous memory,
/// so under memory pressure the OS writes cold state out and drops it from RAM instead of failing, and pages it back
/// in on the next access; pages never touched (e.g. state of parameters that never get a gradient) cost nothing.
/// The file is deleted on <see cref="Dispose"/>.
/// </summary>
/// <remarks>Buffers are 64-byte aligned and zero-filled (a fresh sparse file reads as zeros).</remarks>
public sealed unsafe class PagedStateFile : IDisposable
{
    private const int Alignment = 64;
    private readonly MemoryMappedFile file;
    private readonly MemoryMappedViewAccessor view;
    private byte* basePointer;
    private long used;

    /// <summary>Creates and maps a temporary file of <paramref name="capacityBytes"/> bytes.</summary>
    /// <param name="capacityBytes">The most bytes <see cref="Allocate"/> will hand out, alignment padding included.</param>
    /// <param name="directory">Where to create it; the system temp folder by default.</param>
    /// <exception cref="IOException">The file cannot be created or mapped (the message names it).</exception>
    public PagedStateFile(long capacityBytes, string? directory = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacityBytes);
        Capacity = Math.Max(capacityBytes, Alignment);
        FilePath = System.IO.Path.Combine(directory ?? System.IO.Path.GetTempPath(), $"peft-paged-optimizer-{Guid.NewGuid():N}.bin");
        try
        {
            var stream = new FileStream(FilePath, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None);
            stream.SetLength(Capacity);
            file = MemoryMappedFile.CreateFromFile(stream, null, Capacity, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            view = file.CreateViewAccessor(0, Capacity, MemoryMappedFileAccess.ReadWrite);
            view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePointer);
            basePointer += view.PointerOffset;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            view?.Dispose();
            file?.Dispose();
            File.Delete(FilePath);
            throw new IOException($"Cannot create the paged optimizer state file '{FilePath}' ({Capacity} bytes): {e.Message}", e);
        }
    }

    /// <summary>The file's path (gone after <see cref="Dispose"/>).</summary>
    public string FilePath { get; }

    /// <summary>Mapped bytes.</summary>
    public long Capacity { get; }

    /// <summary>Bytes handed out so far, padding included.</summary>
    public long UsedBytes => used;

    /// <summary>Carves a zero-filled, 64-byte aligned buffer of <paramref name="bytes"/> bytes out of the file.</summary>
    /// <exception cref="InvalidOperationException">The file is full, or disposed.</exception>
    internal nint Allocate(long bytes)
    {
        ObjectDisposedException.ThrowIf(basePointer is null, this);
        long start = (used + Alignment - 1) / Alignment * Alignment;
        if (start + bytes > Capacity)
            throw new InvalidOperationException($"paged optimizer state file '{FilePath}' is full: {bytes} bytes requested, {Capacity - start} of {Capacity} left.");
        used = start + bytes;
        return (nint)(basePointer + start);
    }

    /// <summary>Unmaps and deletes the file. Buffers handed out become invalid.</summary>
    public void Dispose()
    {
        if (basePointer is null) return;
        basePointer = null;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        file.Dispose();
        File.Delete(FilePath);
    }
}
