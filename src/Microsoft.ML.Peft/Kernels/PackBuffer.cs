namespace Microsoft.ML.Peft.Kernels;

/// <summary>
/// A 64-byte aligned float buffer on the pinned object heap, cached per thread and per role so that packing never
/// allocates after warm-up. A nested GEMM on the same thread (the cached buffer is in use) gets a temporary buffer.
/// </summary>
internal sealed unsafe class PackBuffer
{
    private const int AlignmentFloats = 16;

    /// <summary>Floats past the requested size that packers may overwrite (16-wide overlapping stores).</summary>
    public const int SlackFloats = 16;

    [ThreadStatic] private static PackBuffer? t_forA;
    [ThreadStatic] private static PackBuffer? t_forB;

    private readonly float[] _storage;
    private bool _inUse;

    private PackBuffer(int capacity)
    {
        _storage = GC.AllocateUninitializedArray<float>(capacity + SlackFloats + AlignmentFloats, pinned: true);
        fixed (float* start = _storage)
        {
            Pointer = (float*)(((nint)start + 63) & ~(nint)63);
        }
        Capacity = capacity;
    }

    /// <summary>The aligned start; valid for <see cref="Capacity"/> + <see cref="SlackFloats"/> floats.</summary>
    public float* Pointer { get; }

    public int Capacity { get; }

    /// <summary>This thread's buffer for packed A blocks, at least <paramref name="floats"/> long.</summary>
    public static PackBuffer RentForA(int floats) => Rent(ref t_forA, floats);

    /// <summary>This thread's buffer for packed B panels, at least <paramref name="floats"/> long.</summary>
    public static PackBuffer RentForB(int floats) => Rent(ref t_forB, floats);

    /// <summary>Gives the buffer back to its thread's cache.</summary>
    public void Return() => _inUse = false;

    private static PackBuffer Rent(ref PackBuffer? cached, int floats)
    {
        PackBuffer? buffer = cached;
        if (buffer is { _inUse: true })
            buffer = new PackBuffer(floats);
        else if (buffer is null || buffer.Capacity < floats)
            buffer = cached = new PackBuffer(Math.Max(floats, (buffer?.Capacity ?? 0) * 2));
        buffer._inUse = true;
        return buffer;
    }
}
