namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// An n-dimensional strided view over a <see cref="TensorStorage"/>, with reverse-mode autograd.
/// </summary>
/// <remarks>
/// Conventions (see Tensors/README.md): ops are instance methods when they have a primary operand
/// (<c>x.MatMul(w)</c>, <c>x.Softmax()</c>) and static methods only for lists (<see cref="Concat"/>,
/// <see cref="Stack"/>) and factories. Every op returns a new tensor; the only mutating methods end in <c>_</c>
/// (<see cref="Fill_"/>, <see cref="CopyFrom_"/>, ...) and bump the storage version. Views (reshape, transpose,
/// narrow, expand, ...) share storage and never copy, except <see cref="Reshape"/> of a non-viewable layout.
/// </remarks>
public sealed unsafe partial class Tensor
{
    private readonly TensorStorage storage;
    private readonly int[] shape;
    private readonly int[] strides;
    private readonly int offset;
    private readonly int count;

    internal Tensor(TensorStorage storage, int[] shape, int[] strides, int offset, string op)
    {
        this.storage = storage;
        this.shape = shape;
        this.strides = strides;
        this.offset = offset;
        count = ShapeText.Count(shape, op);
        Op = op;
        IsContiguous = ComputeContiguous(shape, strides);
    }

    /// <summary>The dimensions.</summary>
    public ReadOnlySpan<int> Shape => shape;

    /// <summary>Element strides of each dimension (0 for an expanded dimension).</summary>
    public ReadOnlySpan<int> Strides => strides;

    /// <summary>Element offset of this view's first element within <see cref="Storage"/>.</summary>
    public int Offset => offset;

    /// <summary>Number of dimensions.</summary>
    public int Rank => shape.Length;

    /// <summary>Number of elements.</summary>
    public int Count => count;

    /// <summary>Element type.</summary>
    public DType DType => storage.DType;

    /// <summary>The memory this tensor views.</summary>
    public TensorStorage Storage => storage;

    /// <summary>Whether elements are laid out row-major without gaps from <see cref="Offset"/>.</summary>
    public bool IsContiguous { get; }

    /// <summary>The op that produced this tensor ("zeros", "matmul", "transpose", ...), for messages.</summary>
    public string Op { get; }

    /// <summary>An optional name (parameters get their dotted state-dict name) used in error messages.</summary>
    public string? Name { get; set; }

    /// <summary>Size of dimension <paramref name="axis"/> (negative counts from the end).</summary>
    public int Size(int axis) => shape[ShapeText.Axis(axis, Rank, "size")];

    /// <summary>"float32 [2, 3]" plus the name or producing op.</summary>
    public override string ToString() =>
        $"Tensor {DTypeInfo.Name(DType)} {ShapeText.Format(shape)} ({Name ?? Op})";

    /// <summary>Shape text for messages: "[2, 3]".</summary>
    internal string ShapeString => ShapeText.Format(shape);

    /// <summary>Label for error messages: the name when set, otherwise the shape.</summary>
    internal string Describe => Name is null ? $"{DTypeInfo.Name(DType)} {ShapeString}" : $"'{Name}' {DTypeInfo.Name(DType)} {ShapeString}";

    // ---------------------------------------------------------------- raw access for kernels

    /// <summary>Address of this view's first element (float32). Throws if the storage was released.</summary>
    internal float* Ptr => (float*)storage.Pointer + offset;

    /// <summary>Address of this view's first element reinterpreted as <typeparamref name="T"/>.</summary>
    internal T* PtrAs<T>() where T : unmanaged => (T*)storage.Pointer + offset;

    /// <summary>The elements of a contiguous float32 tensor (no version bump: kernels writing fresh outputs).</summary>
    internal Span<float> Span
    {
        get
        {
            if (!IsContiguous) throw new InvalidOperationException($"internal: span of non-contiguous tensor {Describe} from '{Op}'");
            return new Span<float>(Ptr, count);
        }
    }

    /// <summary>Read-only elements of a contiguous tensor of element type <typeparamref name="T"/>.</summary>
    /// <exception cref="InvalidOperationException">The tensor is not contiguous or <typeparamref name="T"/> does not match its dtype.</exception>
    public ReadOnlySpan<T> AsReadOnlySpan<T>() where T : unmanaged => new(CheckedPointer<T>("AsReadOnlySpan"), count);

    /// <summary>Writable elements of a contiguous tensor; bumps the version (assumes the caller writes).</summary>
    public Span<T> AsSpan<T>() where T : unmanaged
    {
        var p = CheckedPointer<T>("AsSpan");
        storage.BumpVersion();
        return new Span<T>(p, count);
    }

    /// <summary>Copies the elements, in row-major order, to a new float array (any layout; float32 only).</summary>
    public float[] ToArray()
    {
        RequireFloat32("ToArray");
        var result = new float[count];
        StridedCopy.Copy<float>(this, result);
        return result;
    }

    /// <summary>Copies the elements of an int32 tensor, in row-major order, to a new array.</summary>
    public int[] ToInt32Array()
    {
        if (DType != DType.Int32) throw new InvalidOperationException($"ToInt32Array: tensor {Describe} is not int32");
        var result = new int[count];
        StridedCopy.Copy<int>(this, result);
        return result;
    }

    /// <summary>The value of a one-element float32 tensor (e.g. a loss).</summary>
    public float Item()
    {
        if (count != 1) throw new InvalidOperationException($"Item: tensor {Describe} from '{Op}' has {count} elements, expected 1");
        RequireFloat32("Item");
        return *Ptr;
    }

    /// <summary>Reads one float32 element by index (for tests and diagnostics; not for loops).</summary>
    public float At(params int[] index)
    {
        RequireFloat32("At");
        return *((float*)storage.Pointer + ElementOffset(index));
    }

    /// <summary>Storage offset of a multi-index, bounds-checked.</summary>
    internal int ElementOffset(ReadOnlySpan<int> index)
    {
        if (index.Length != Rank) throw new ArgumentException($"index has {index.Length} coordinates, tensor {Describe} has rank {Rank}");
        int o = offset;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)shape[i])
                throw new IndexOutOfRangeException($"index {index[i]} out of range for dimension {i} of {Describe}");
            o += index[i] * strides[i];
        }
        return o;
    }

    /// <summary>Throws unless this tensor is float32, naming the op.</summary>
    internal void RequireFloat32(string op)
    {
        if (DType != DType.Float32)
            throw new NotSupportedException($"{op} requires float32 tensors but got {Describe} (from '{Op}'); convert with To(DType.Float32).");
    }

    private T* CheckedPointer<T>(string what) where T : unmanaged
    {
        if (sizeof(T) != DTypeInfo.SizeOf(DType) || (typeof(T) == typeof(float) && DType != DType.Float32) ||
            (typeof(T) == typeof(int) && DType != DType.Int32))
            throw new InvalidOperationException($"{what}<{typeof(T).Name}>: tensor {Describe} holds {DTypeInfo.Name(DType)}");
        if (!IsContiguous) throw new InvalidOperationException($"{what}: tensor {Describe} from '{Op}' is not contiguous; call Contiguous() first");
        return PtrAs<T>();
    }

    private static bool ComputeContiguous(int[] shape, int[] strides)
    {
        int expected = 1;
        for (int i = shape.Length - 1; i >= 0; i--)
        {
            if (shape[i] == 1) continue;
            if (strides[i] != expected) return false;
            expected *= shape[i];
        }
        return true;
    }

    /// <summary>A new pooled contiguous tensor (contents uninitialised) tracked by the current scope.</summary>
    internal static Tensor NewOutput(int[] shape, string op, DType dtype = DType.Float32)
    {
        int n = ShapeText.Count(shape, op);
        var storage = new PooledStorage(dtype, n) { OriginOp = op, OriginShape = shape };
        TensorScope.Track(storage);
        return new Tensor(storage, shape, ShapeText.ContiguousStrides(shape), 0, op);
    }

    /// <summary>A view sharing this tensor's storage.</summary>
    internal Tensor View(int[] newShape, int[] newStrides, int newOffset, string op) =>
        new(storage, newShape, newStrides, newOffset, op);

    /// <summary>The shape as a fresh array (callers may keep it).</summary>
    public int[] ShapeArray() => (int[])shape.Clone();

    internal int[] ShapeRef => shape;

    internal int[] StridesRef => strides;
}
