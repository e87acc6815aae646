namespace Microsoft.ML.Peft.Quantization;

/// <summary>The 16-level code books a 4-bit weight can be stored in.</summary>
public enum FourBitType
{
    /// <summary>
    /// NormalFloat4 (QLoRA): 16 quantiles of the standard normal distribution scaled to [-1, 1], with an exact zero.
    /// bitsandbytes' <c>"nf4"</c>.
    /// </summary>
    NF4,

    /// <summary>
    /// 4-bit float E2M1 (1 sign, 2 exponent, 1 mantissa bit, exponent bias 2) in bitsandbytes' bit-pattern order,
    /// divided by its largest magnitude 12. bitsandbytes' <c>"fp4"</c>.
    /// </summary>
    FP4,

    /// <summary>
    /// Symmetric integers {7, 6, ..., 0, -0, -1, ..., -7} / 7 in bitsandbytes' <c>get_4bit_type("int4")</c> order.
    /// bitsandbytes has the table but its 4-bit kernels only accept nf4/fp4; here it is a full citizen.
    /// </summary>
    Int4,
}

/// <summary>Names of <see cref="FourBitType"/> as bitsandbytes spells them.</summary>
public static class FourBitTypeNames
{
    /// <summary>"nf4", "fp4" or "int4".</summary>
    public static string ToBitsAndBytesName(this FourBitType type) => type switch
    {
        FourBitType.NF4 => "nf4",
        FourBitType.FP4 => "fp4",
        FourBitType.Int4 => "int4",
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "Unknown 4-bit type."),
    };

    /// <summary>Parses "nf4", "fp4" or "int4" (case-sensitive, as bitsandbytes writes them).</summary>
    public static bool TryParse(string? name, out FourBitType type)
    {
        switch (name)
        {
            case "nf4": type = FourBitType.NF4; return true;
            case "fp4": type = FourBitType.FP4; return true;
            case "int4": type = FourBitType.Int4; return true;
            default: type = default; return false;
        }
    }
}
