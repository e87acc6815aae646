using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

/// <summary>Factories and dtype conversion.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>A float32 tensor of zeros.</summary>
    public static Tensor Zeros(params int[] shape) => Full(0f, shape);

    /// <summary>A float32 tensor of ones.</summary>
    public static Tensor Ones(params int[] shape) => Full(1f, shape);

    /// <summary>A float32 tensor filled with <paramref name="value"/>.</summary>
    public static Tensor Full(float value, params int[] shape)
    {
        var t = NewOutput((int[])shape.Clone(), "full");
        t.Span.Fill(value);
        return t;
    }

    /// <summary>An uninitialised float32 tensor (contents arbitrary: every element must be written before use).</summary>
    public static Tensor Empty(params int[] shape) => NewOutput((int[])shape.Clone(), "empty");

    /// <summary>A 0-d float32 tensor holding <paramref name="value"/>.</summary>
    public static Tensor Scalar(float value) => Full(value, []);

    /// <summary>A float32 tensor holding a copy of <paramref name="values"/> in row-major order.</summary>
    public static Tensor From(ReadOnlySpan<float> values, params int[] shape) => FromValues(values, shape, DType.Float32);

    /// <summary>An int32 tensor (indices, masks) holding a copy of <paramref name="values"/>.</summary>
    public static Tensor FromInt32(ReadOnlySpan<int> values, params int[] shape) => FromValues(values, shape, DType.Int32);

    /// <summary>A bfloat16 tensor from raw bits (upper 16 bits of float32).</summary>
    public static Tensor FromBFloat16(ReadOnlySpan<ushort> bits, params int[] shape) => FromValues(bits, shape, DType.BFloat16);

    /// <summary>A float16 tensor.</summary>
    public static Tensor FromFloat16(ReadOnlySpan<Half> values, params int[] shape) => FromValues(values, shape, DType.Float16);

    /// <summary>
    /// A tensor over existing storage without copying (e.g. <see cref="ExternalStorage"/> over a memory-mapped
    /// checkpoint). Strides default to contiguous.
    /// </summary>
    public static Tensor FromStorage(TensorStorage storage, int[] shape, int[]? strides = null, int offset = 0)
    {
        ArgumentNullException.ThrowIfNull(storage);
        var s = strides ?? ShapeText.ContiguousStrides(shape);
        if (s.Length != shape.Length) throw new ArgumentException($"FromStorage: {s.Length} strides for shape {ShapeText.Format(shape)}");
        long last = offset;
        for (int i = 0; i < shape.Length; i++)
        {
            if (shape[i] == 0) last = offset - 1;
            if (s[i] < 0) throw new ArgumentException($"FromStorage: negative stride {s[i]}");
            if (shape[i] > 0) last += (long)(shape[i] - 1) * s[i];
        }
        if (offset < 0 || last >= storage.Length)
            throw new ArgumentException($"FromStorage: shape {ShapeText.Format(shape)} with strides {ShapeText.Format(s)} at offset {offset} exceeds the storage ({storage.Length} elements)");
        return new Tensor(storage, (int[])shape.Clone(), (int[])s.Clone(), offset, "from_storage");
    }

    /// <summary>0, 1, ..., count−1 as float32 or int32 (position ids).</summary>
    public static Tensor Arange(int count, DType dtype = DType.Float32)
    {
        var t = NewOutput([count], "arange", dtype);
        if (dtype == DType.Int32)
        {
            var s = new Span<int>(t.PtrAs<int>(), count);
            for (int i = 0; i < count; i++) s[i] = i;
        }
        else if (dtype == DType.Float32)
        {
            var s = t.Span;
            for (int i = 0; i < count; i++) s[i] = i;
        }
        else
        {
            throw new NotSupportedException($"arange: dtype {DTypeInfo.Name(dtype)}");
        }
        return t;
    }

    /// <summary>
    /// Converts to <paramref name="dtype"/> (returns this tensor when already of that type). Float32 → bfloat16 rounds
    /// to nearest even (as PyTorch); float → int32 truncates toward zero. Not differentiable.
    /// </summary>
    public Tensor To(DType dtype)
    {
        if (dtype == DType) return this;
        var src = IsContiguous ? this : ContiguousCopy();
        var y = NewOutput(shape, "to_" + DTypeInfo.Name(dtype), dtype);
        int n = count;
        switch (DType, dtype)
        {
            case (DType.Float32, DType.BFloat16):
                {
                    float* s = src.Ptr;
                    ushort* d = y.PtrAs<ushort>();
                    for (int i = 0; i < n; i++) d[i] = BFloat16.FromFloat(s[i]);
                    break;
                }
            case (DType.BFloat16, DType.Float32):
                BFloat16.ToFloat(new ReadOnlySpan<ushort>(src.PtrAs<ushort>(), n), new Span<float>(y.Ptr, n));
                break;
            case (DType.Float32, DType.Float16):
                TensorPrimitives.ConvertToHalf(new ReadOnlySpan<float>(src.Ptr, n), new Span<Half>(y.PtrAs<Half>(), n));
                break;
            case (DType.Float16, DType.Float32):
                TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src.PtrAs<Half>(), n), new Span<float>(y.Ptr, n));
                break;
            case (DType.Int32, DType.Float32):
                {
                    int* s = src.PtrAs<int>();
                    float* d = y.Ptr;
                    for (int i = 0; i < n; i++) d[i] = s[i];
                    break;
                }
            case (DType.Float32, DType.Int32):
                {
                    float* s = src.Ptr;
                    int* d = y.PtrAs<int>();
                    for (int i = 0; i < n; i++) d[i] = (int)s[i];
                    break;
                }
            default:
                return To(DType.Float32).To(dtype);
        }
        return y;
    }

    private static Tensor FromValues<T>(ReadOnlySpan<T> values, int[] shape, DType dtype) where T : unmanaged
    {
        int n = ShapeText.Count(shape, "from");
        if (values.Length != n)
            throw new ArgumentException($"From: {values.Length} values for shape {ShapeText.Format(shape)} ({n} elements)");
        var t = NewOutput((int[])shape.Clone(), "from", dtype);
        values.CopyTo(new Span<T>(t.PtrAs<T>(), n));
        return t;
    }
}

/// <summary>bfloat16 ↔ float32 conversions (bfloat16 is the upper half of a float32).</summary>
public static class BFloat16
{
    /// <summary>Rounds to nearest even; NaN stays a quiet NaN.</summary>
    public static ushort FromFloat(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value)) return 0x7FC0;
        bits += 0x7FFFu + ((bits >> 16) & 1u);
        return (ushort)(bits >> 16);
    }

    /// <summary>Exact widening.</summary>
    public static float ToFloat(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    /// <summary>Exact widening of a span.</summary>
    public static void ToFloat(ReadOnlySpan<ushort> bits, Span<float> destination)
    {
        for (int i = 0; i < bits.Length; i++) destination[i] = BitConverter.UInt32BitsToSingle((uint)bits[i] << 16);
    }
}
