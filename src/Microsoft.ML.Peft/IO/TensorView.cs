using System.Collections.Immutable;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// A read-only, engine-independent view of one tensor in a checkpoint: dtype, shape and the raw little-endian,
/// row-major (C-order) bytes. For memory-mapped files the bytes are the mapping itself, so
/// <see cref="AsFloat32"/> is zero-copy for F32 tensors; other float dtypes widen on the fly with
/// <see cref="CopyToFloat32"/>; quantized payloads (I8/U8) are read raw with <see cref="AsSpan{T}"/>.
/// </summary>
/// <remarks>
/// A view is valid while the <see cref="ITensorSource"/> that produced it is open. Accessing data after the source is
/// disposed throws <see cref="ObjectDisposedException"/>; a span obtained earlier must not be used after disposal
/// (it points into an unmapped file), exactly as with any memory-mapped buffer.
/// </remarks>
public sealed unsafe class TensorView
{
    private readonly TensorStorage? _storage;
    private readonly long _byteOffset;
    private readonly Lazy<TensorStorage>? _materialized;

    /// <summary>A view over <paramref name="byteLength"/> bytes at <paramref name="byteOffset"/> of a storage.</summary>
    internal TensorView(string name, CheckpointDType dtype, ImmutableArray<int> shape, TensorStorage storage, long byteOffset)
        : this(name, dtype, shape)
    {
        if (byteOffset < 0 || byteOffset > storage.Length - ByteLength)
            throw new ArgumentOutOfRangeException(nameof(byteOffset), $"tensor '{name}' lies outside its storage");
        _storage = storage;
        _byteOffset = byteOffset;
    }

    /// <summary>A view whose contiguous bytes are produced on first access (e.g. gathering a strided PyTorch view).</summary>
    internal TensorView(string name, CheckpointDType dtype, ImmutableArray<int> shape, Func<TensorStorage> materialize)
        : this(name, dtype, shape)
    {
        _materialized = new Lazy<TensorStorage>(materialize, LazyThreadSafetyMode.ExecutionAndPublication);
    }

    private TensorView(string name, CheckpointDType dtype, ImmutableArray<int> shape)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        long count = 1;
        foreach (int d in shape) count = checked(count * d);
        ElementCount = count;
        ByteLength = checked(count * dtype.SizeInBytes());
    }

    /// <summary>The tensor's name in the checkpoint, e.g. "model.layers.0.self_attn.q_proj.weight".</summary>
    public string Name { get; }

    /// <summary>Element type as stored in the file.</summary>
    public CheckpointDType DType { get; }

    /// <summary>Dimensions, outermost first; empty for a scalar.</summary>
    public ImmutableArray<int> Shape { get; }

    /// <summary>Number of dimensions.</summary>
    public int Rank => Shape.Length;

    /// <summary>Product of the dimensions (1 for a scalar).</summary>
    public long ElementCount { get; }

    /// <summary><see cref="ElementCount"/> × element size.</summary>
    public long ByteLength { get; }

    /// <summary>
    /// Address of the first byte, valid while the source is open. Use for tensors over 2 GiB, where spans cannot
    /// reach; otherwise prefer <see cref="Bytes"/>.
    /// </summary>
    public IntPtr DataPointer => (IntPtr)Start;

    /// <summary>The raw bytes (little-endian, row-major). Zero-copy.</summary>
    public ReadOnlySpan<byte> Bytes => new(Start, CheckedInt32(ByteLength, "bytes"));

    /// <summary>
    /// The data reinterpreted as <typeparamref name="T"/> (zero-copy). <typeparamref name="T"/> must have the
    /// element size of <see cref="DType"/>: float for F32, Half or ushort for F16, ushort for BF16 bits, sbyte/byte
    /// for I8/U8, and so on.
    /// </summary>
    public ReadOnlySpan<T> AsSpan<T>() where T : unmanaged
    {
        if (sizeof(T) != DType.SizeInBytes())
            throw new InvalidOperationException(
                $"tensor '{Name}' is {DType.ToSafeTensorsName()} ({DType.SizeInBytes()} bytes per element); " +
                $"cannot view it as {typeof(T).Name} ({sizeof(T)} bytes)");
        return new ReadOnlySpan<T>(Start, CheckedInt32(ElementCount, "elements"));
    }

    /// <summary>Zero-copy fp32 view; the tensor must be F32 (use <see cref="CopyToFloat32"/> for other dtypes).</summary>
    public ReadOnlySpan<float> AsFloat32()
    {
        if (DType != CheckpointDType.F32)
            throw new InvalidOperationException(
                $"tensor '{Name}' is {DType.ToSafeTensorsName()}, not F32; use CopyToFloat32 to convert it");
        return AsSpan<float>();
    }

    /// <summary>Writes the values, widened or converted to fp32, into <paramref name="destination"/> (length ≥ element count).</summary>
    public void CopyToFloat32(Span<float> destination)
    {
        int count = CheckedInt32(ElementCount, "elements");
        if (destination.Length < count)
            throw new ArgumentException($"tensor '{Name}' has {count} elements; destination holds {destination.Length}", nameof(destination));
        Float32Conversion.Convert(DType, Bytes, destination[..count]);
    }

    /// <summary>A new fp32 array holding the values (see <see cref="CopyToFloat32"/>).</summary>
    public float[] ToFloat32Array()
    {
        var result = GC.AllocateUninitializedArray<float>(CheckedInt32(ElementCount, "elements"));
        CopyToFloat32(result);
        return result;
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name}: {DType.ToSafeTensorsName()}[{string.Join(", ", Shape)}]";

    private byte* Start =>
        _materialized is not null ? _materialized.Value.Pointer : _storage!.Pointer + _byteOffset;

    private int CheckedInt32(long value, string what) =>
        value <= int.MaxValue
            ? (int)value
            : throw new InvalidOperationException(
                $"tensor '{Name}' has {value} {what}, more than a span can address; use DataPointer and ByteLength");
}
