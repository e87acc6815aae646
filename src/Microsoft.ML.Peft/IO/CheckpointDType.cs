namespace Microsoft.ML.Peft.IO;

/// <summary>
/// Element type of a tensor stored in a checkpoint file (safetensors or PyTorch pickle). The names follow the
/// safetensors specification; PyTorch storage classes map onto the same set.
/// </summary>
public enum CheckpointDType
{
    /// <summary>Boolean, one byte per element (0 or 1).</summary>
    Bool,
    /// <summary>Unsigned 8-bit integer.</summary>
    U8,
    /// <summary>Signed 8-bit integer.</summary>
    I8,
    /// <summary>8-bit float, 5 exponent bits and 2 mantissa bits.</summary>
    F8E5M2,
    /// <summary>8-bit float, 4 exponent bits and 3 mantissa bits.</summary>
    F8E4M3,
    /// <summary>Signed 16-bit integer.</summary>
    I16,
    /// <summary>Unsigned 16-bit integer.</summary>
    U16,
    /// <summary>IEEE 754 half precision.</summary>
    F16,
    /// <summary>bfloat16: the upper 16 bits of an IEEE single.</summary>
    BF16,
    /// <summary>Signed 32-bit integer.</summary>
    I32,
    /// <summary>Unsigned 32-bit integer.</summary>
    U32,
    /// <summary>IEEE 754 single precision.</summary>
    F32,
    /// <summary>IEEE 754 double precision.</summary>
    F64,
    /// <summary>Signed 64-bit integer.</summary>
    I64,
    /// <summary>Unsigned 64-bit integer.</summary>
    U64,
}

/// <summary>Facts about <see cref="CheckpointDType"/> values: element size and safetensors spelling.</summary>
public static class CheckpointDTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeInBytes(this CheckpointDType dtype) => dtype switch
    {
        CheckpointDType.Bool or CheckpointDType.U8 or CheckpointDType.I8
            or CheckpointDType.F8E5M2 or CheckpointDType.F8E4M3 => 1,
        CheckpointDType.I16 or CheckpointDType.U16 or CheckpointDType.F16 or CheckpointDType.BF16 => 2,
        CheckpointDType.I32 or CheckpointDType.U32 or CheckpointDType.F32 => 4,
        CheckpointDType.F64 or CheckpointDType.I64 or CheckpointDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    /// <summary>The dtype string used in a safetensors header, e.g. "F32", "BF16", "F8_E4M3".</summary>
    public static string ToSafeTensorsName(this CheckpointDType dtype) => dtype switch
    {
        CheckpointDType.Bool => "BOOL",
        CheckpointDType.F8E5M2 => "F8_E5M2",
        CheckpointDType.F8E4M3 => "F8_E4M3",
        _ => dtype.ToString(),
    };

    /// <summary>Parses a safetensors dtype string (case-sensitive, as the specification spells them).</summary>
    public static bool TryParseSafeTensorsName(string name, out CheckpointDType dtype)
    {
        switch (name)
        {
            case "BOOL": dtype = CheckpointDType.Bool; return true;
            case "U8": dtype = CheckpointDType.U8; return true;
            case "I8": dtype = CheckpointDType.I8; return true;
            case "F8_E5M2": dtype = CheckpointDType.F8E5M2; return true;
            case "F8_E4M3": dtype = CheckpointDType.F8E4M3; return true;
            case "I16": dtype = CheckpointDType.I16; return true;
            case "U16": dtype = CheckpointDType.U16; return true;
            case "F16": dtype = CheckpointDType.F16; return true;
            case "BF16": dtype = CheckpointDType.BF16; return true;
            case "I32": dtype = CheckpointDType.I32; return true;
            case "U32": dtype = CheckpointDType.U32; return true;
            case "F32": dtype = CheckpointDType.F32; return true;
            case "F64": dtype = CheckpointDType.F64; return true;
            case "I64": dtype = CheckpointDType.I64; return true;
            case "U64": dtype = CheckpointDType.U64; return true;
            default: dtype = default; return false;
        }
    }

    /// <summary>All safetensors dtype strings, for error messages.</summary>
    internal const string SupportedSafeTensorsNames = "BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, F64, I64, U64";
}
