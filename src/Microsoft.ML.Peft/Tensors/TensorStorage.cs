namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// The memory behind one or more tensors (a tensor and its views share one storage): a base address, an element count
/// and a dtype, plus whatever keeps that memory alive.
/// </summary>
/// <remarks>
/// Two kinds exist: pooled pinned buffers (<see cref="TensorPool"/>), which a <see cref="TensorScope"/> can hand back
/// when it ends, and <see cref="ExternalStorage"/> wrapping memory owned elsewhere (e.g. a memory-mapped safetensors
/// file, zero-copy). Kernels read through <see cref="Pointer"/>, which throws once the memory has been released, so a
/// stale tensor can never read a recycled buffer.
/// The version counter is shared by all views and bumped by every in-place write; autograd compares it against the
/// value recorded when a tensor was saved for backward.
/// </remarks>
public abstract unsafe class TensorStorage
{
    private protected TensorStorage(DType dtype, int length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        DType = dtype;
        Length = length;
    }

    /// <summary>Element type.</summary>
    public DType DType { get; }

    /// <summary>Number of elements.</summary>
    public int Length { get; }

    /// <summary>Whether the memory has been released (returned to the pool); any further access throws.</summary>
    public abstract bool IsReleased { get; }

    /// <summary>In-place modification counter shared by every view of this storage.</summary>
    public int Version { get; private set; }

    /// <summary>Base address of element 0. Throws <see cref="ObjectDisposedException"/> once released.</summary>
    internal abstract nint Pointer { get; }

    /// <summary>The scope that returns this storage to the pool when it ends (pooled storage only).</summary>
    internal TensorScope? OwnerScope { get; set; }

    /// <summary>Records an in-place modification.</summary>
    internal void BumpVersion() => Version++;

    /// <summary>Returns the memory to its owner (pooled storage); a no-op for external memory.</summary>
    internal abstract void Release();
}

/// <summary>A pooled, pinned buffer from <see cref="TensorPool"/>.</summary>
internal sealed class PooledStorage : TensorStorage
{
    private float[]? buffer;
    private nint pointer;

    internal PooledStorage(DType dtype, int length)
        : base(dtype, length)
    {
        int words = checked((int)(((long)length * DTypeInfo.SizeOf(dtype) + 3) / 4));
        buffer = TensorPool.Rent(words);
        unsafe { pointer = (nint)System.Runtime.CompilerServices.Unsafe.AsPointer(ref buffer[0]); }
    }

    public override bool IsReleased => buffer is null;

    /// <summary>The op that produced the first tensor on this storage, for use-after-free messages.</summary>
    internal string OriginOp { get; set; } = "";

    /// <summary>The shape of that first tensor.</summary>
    internal int[] OriginShape { get; set; } = [];

    internal override nint Pointer
    {
        get
        {
            if (buffer is null) ThrowReleased();
            return pointer;
        }
    }

    internal override void Release()
    {
        if (buffer is null) return;
        TensorPool.Return(buffer);
        buffer = null;
        pointer = 0;
    }

    private void ThrowReleased() => throw new ObjectDisposedException(
        "Tensor",
        $"Tensor {ShapeText.Format(OriginShape)} (output of '{OriginOp}') was used after the TensorScope that owned its buffer was disposed (the buffer is back in the pool). " +
        "Keep results you need beyond a scope with Tensor.MoveToOuterScope(), or read them before the scope ends.");
}

/// <summary>
/// Storage over memory that the engine does not own, e.g. a memory-mapped checkpoint: zero-copy, never pooled.
/// </summary>
/// <remarks>The <c>owner</c> object is kept alive as long as any tensor references this storage.</remarks>
public sealed class ExternalStorage : TensorStorage
{
    private readonly nint pointer;

    /// <summary>Wraps <paramref name="length"/> elements of <paramref name="dtype"/> at <paramref name="pointer"/>.</summary>
    /// <param name="pointer">Address of element 0; must stay valid while <paramref name="owner"/> is alive.</param>
    /// <param name="length">Element count.</param>
    /// <param name="dtype">Element type.</param>
    /// <param name="owner">The object responsible for the memory (e.g. a memory-mapped view); held to keep it alive.</param>
    public ExternalStorage(nint pointer, int length, DType dtype, object? owner)
        : base(dtype, length)
    {
        if (pointer == 0 && length > 0) throw new ArgumentException("external storage pointer is null", nameof(pointer));
        this.pointer = pointer;
        Owner = owner;
    }

    /// <summary>The object that owns the memory.</summary>
    public object? Owner { get; }

    /// <inheritdoc/>
    public override bool IsReleased => false;

    internal override nint Pointer => pointer;

    internal override void Release()
    {
    }
}
