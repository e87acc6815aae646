namespace Microsoft.ML.Peft.Tensors;

/// <summary>Element type of a tensor's storage.</summary>
/// <remarks>
/// Compute is always float32. <see cref="BFloat16"/> and <see cref="Float16"/> are storage formats for frozen weights:
/// matrix products and embedding lookups widen them on the fly. <see cref="Int32"/> holds indices (token ids, class
/// targets, position ids) and boolean masks (non-zero = true).
/// </remarks>
public enum DType
{
    /// <summary>IEEE 754 binary32; the compute type of every op.</summary>
    Float32,

    /// <summary>bfloat16 stored as raw <see cref="ushort"/> bits (the upper half of a float32).</summary>
    BFloat16,

    /// <summary>IEEE 754 binary16 (<see cref="Half"/>).</summary>
    Float16,

    /// <summary>32-bit signed integer: indices and masks.</summary>
    Int32,
}

/// <summary>Sizes and names of <see cref="DType"/> values.</summary>
public static class DTypeInfo
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(DType dtype) => dtype switch
    {
        DType.Float32 or DType.Int32 => 4,
        DType.BFloat16 or DType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The PyTorch-style lower-case name used in error messages ("float32", "bfloat16", ...).</summary>
    public static string Name(DType dtype) => dtype switch
    {
        DType.Float32 => "float32",
        DType.BFloat16 => "bfloat16",
        DType.Float16 => "float16",
        DType.Int32 => "int32",
        _ => dtype.ToString(),
    };
}
