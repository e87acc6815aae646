namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>How rotary position frequencies are rescaled for contexts longer than training (<c>rope_scaling.rope_type</c>).</summary>
public enum RopeScalingType
{
    /// <summary>"linear": positions divided by <see cref="RopeScaling.Factor"/> (position interpolation).</summary>
    Linear,
    /// <summary>"dynamic": NTK-aware base rescaling once the sequence exceeds the trained length.</summary>
    Dynamic,
    /// <summary>"llama3": per-frequency smooth interpolation between low and high frequency bands (Llama 3.1).</summary>
    Llama3,
}

/// <summary>
/// The <c>rope_scaling</c> object of a config (legacy key <c>type</c> or current <c>rope_type</c>). Fields that a
/// type does not use are null. "default" (no scaling) is represented by no <see cref="RopeScaling"/> at all.
/// </summary>
/// <param name="Type">The scaling method.</param>
/// <param name="Factor"><c>factor</c> (≥ 1).</param>
/// <param name="LowFreqFactor"><c>low_freq_factor</c> (llama3).</param>
/// <param name="HighFreqFactor"><c>high_freq_factor</c> (llama3).</param>
/// <param name="OriginalMaxPositionEmbeddings"><c>original_max_position_embeddings</c> (llama3; optional for dynamic).</param>
public sealed record RopeScaling(
    RopeScalingType Type, double Factor, double? LowFreqFactor = null, double? HighFreqFactor = null, int? OriginalMaxPositionEmbeddings = null)
{
    private const string Supported = "default, linear, dynamic, llama3";

    /// <summary>Parses a rope_scaling / rope_parameters object; null when absent or of type "default".</summary>
    internal static RopeScaling? Read(ConfigJson? o, string field)
    {
        if (o is null) return null;
        string? type = o.StringOrNull("rope_type") ?? o.StringOrNull("type");
        if (type is null or "default") return null;
        RopeScalingType kind = type switch
        {
            "linear" => RopeScalingType.Linear,
            "dynamic" => RopeScalingType.Dynamic,
            "llama3" => RopeScalingType.Llama3,
            _ => throw o.Error(field, $"rope type '{type}' is not supported; supported: {Supported}"),
        };
        double factor = o.DoubleOrNull("factor") ?? throw o.Error(field, $"'{type}' scaling needs 'factor'");
        if (factor < 1) throw o.Error(field, $"factor must be ≥ 1, found {factor}");
        if (kind != RopeScalingType.Llama3)
            return new RopeScaling(kind, factor, OriginalMaxPositionEmbeddings: o.IntOrNull("original_max_position_embeddings"));

        double low = o.DoubleOrNull("low_freq_factor") ?? throw o.Error(field, "'llama3' scaling needs 'low_freq_factor'");
        double high = o.DoubleOrNull("high_freq_factor") ?? throw o.Error(field, "'llama3' scaling needs 'high_freq_factor'");
        int original = o.IntOrNull("original_max_position_embeddings") ?? throw o.Error(field, "'llama3' scaling needs 'original_max_position_embeddings'");
        if (!(high > low)) throw o.Error(field, $"high_freq_factor ({high}) must exceed low_freq_factor ({low})");
        return new RopeScaling(kind, factor, low, high, original);
    }
}
