using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Microsoft.ML.Peft.Quantization;

/// <summary>Element types of <see cref="QuantizedArray"/>.</summary>
public enum QuantizedArrayDType
{
    /// <summary>Unsigned bytes (safetensors "U8").</summary>
    UInt8,

    /// <summary>IEEE single precision, little-endian (safetensors "F32").</summary>
    Float32,
}

/// <summary>
/// One named array of a serialized quantized weight, as raw little-endian bytes ready for a safetensors writer.
/// </summary>
public sealed class QuantizedArray
{
    private readonly byte[] _data;
    private readonly long[] _shape;

    /// <summary>Wraps <paramref name="data"/> (not copied). Its length must match the shape and dtype.</summary>
    /// <exception cref="ArgumentException">The byte count disagrees with the shape; the message names the array.</exception>
    public QuantizedArray(string name, QuantizedArrayDType dtype, long[] shape, byte[] data)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        long count = 1;
        foreach (long dim in shape)
        {
            if (dim < 0) throw new ArgumentException($"{name}: negative dimension in shape [{string.Join(", ", shape)}].", nameof(shape));
            count *= dim;
        }
        long bytes = count * ElementSize(dtype);
        if (bytes != data.Length)
            throw new ArgumentException($"{name}: shape [{string.Join(", ", shape)}] of {dtype} needs {bytes} bytes, got {data.Length}.", nameof(data));
        Name = name;
        DType = dtype;
        _shape = (long[])shape.Clone();
        _data = data;
    }

    /// <summary>Full state-dict key, e.g. <c>model.layers.0.mlp.up_proj.weight.absmax</c>.</summary>
    public string Name { get; }

    /// <summary>Element type.</summary>
    public QuantizedArrayDType DType { get; }

    /// <summary>The safetensors dtype string: "U8" or "F32".</summary>
    public string SafeTensorsDType => DType == QuantizedArrayDType.UInt8 ? "U8" : "F32";

    /// <summary>Dimensions (a copy).</summary>
    public long[] Shape => (long[])_shape.Clone();

    /// <summary>Number of elements.</summary>
    public long ElementCount => _data.Length / ElementSize(DType);

    /// <summary>The raw little-endian bytes.</summary>
    public ReadOnlySpan<byte> Data => _data;

    /// <summary>A float array as an F32 entry.</summary>
    public static QuantizedArray FromFloats(string name, ReadOnlySpan<float> values, long[] shape)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        if (BitConverter.IsLittleEndian) MemoryMarshal.AsBytes(values).CopyTo(bytes);
        else for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return new QuantizedArray(name, QuantizedArrayDType.Float32, shape, bytes);
    }

    /// <summary>A byte array as a U8 entry (copied).</summary>
    public static QuantizedArray FromBytes(string name, ReadOnlySpan<byte> values, long[] shape) =>
        new(name, QuantizedArrayDType.UInt8, shape, values.ToArray());

    /// <summary>The elements of an F32 entry.</summary>
    /// <exception cref="InvalidDataException">The entry is not F32 (the message names it).</exception>
    public float[] ToFloats()
    {
        if (DType != QuantizedArrayDType.Float32) throw new InvalidDataException($"{Name}: expected F32, found {SafeTensorsDType}.");
        var values = new float[_data.Length / sizeof(float)];
        for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleLittleEndian(_data.AsSpan(4 * i));
        return values;
    }

    /// <summary>The elements of a U8 entry (copied).</summary>
    /// <exception cref="InvalidDataException">The entry is not U8 (the message names it).</exception>
    public byte[] ToBytes()
    {
        if (DType != QuantizedArrayDType.UInt8) throw new InvalidDataException($"{Name}: expected U8, found {SafeTensorsDType}.");
        return (byte[])_data.Clone();
    }

    private static int ElementSize(QuantizedArrayDType dtype) => dtype switch
    {
        QuantizedArrayDType.UInt8 => 1,
        QuantizedArrayDType.Float32 => 4,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype."),
    };
}
