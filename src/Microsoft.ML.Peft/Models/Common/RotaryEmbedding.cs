using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Common;

/// <summary>
/// Rotary position tables for one model: the inverse frequencies of <c>rope_theta</c> with the config's
/// <c>rope_scaling</c> applied (none, "linear", "dynamic" NTK or "llama3"), and the cos/sin tables
/// [positions, rotaryDim/2] that <see cref="Tensor.ApplyRotary"/> reads, grown on demand.
/// </summary>
/// <remarks>
/// Frequencies are computed in float32 step by step as Hugging Face's <c>modeling_rope_utils</c> does, so the
/// tables match PyTorch to the last bit of the inputs to cos/sin. "dynamic" follows HF's stateful update: when a
/// forward needs more than the original context, the base is rescaled for that length and kept until a forward
/// fits in the original context again.
/// </remarks>
public sealed class RotaryEmbedding
{
    private readonly double theta;
    private readonly RopeScaling? scaling;
    private readonly int originalMaxPositions;
    private int dynamicLength;
    private Tensor? cos;
    private Tensor? sin;

    /// <summary>Tables for heads whose first <paramref name="rotaryDim"/> features are rotated.</summary>
    public RotaryEmbedding(int rotaryDim, double theta, RopeScaling? scaling, int maxPositionEmbeddings)
    {
        if (rotaryDim <= 0 || rotaryDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(rotaryDim), $"rotary dimension {rotaryDim} must be positive and even");
        RotaryDim = rotaryDim;
        this.theta = theta;
        this.scaling = scaling;
        originalMaxPositions = scaling?.OriginalMaxPositionEmbeddings is int o && scaling.Type == RopeScalingType.Dynamic ? o : maxPositionEmbeddings;
        dynamicLength = originalMaxPositions;
        InverseFrequencies = Frequencies(rotaryDim, theta, scaling, originalMaxPositions);
    }

    /// <summary>Number of rotated features per head.</summary>
    public int RotaryDim { get; }

    /// <summary>The inverse frequencies currently in use (R/2 values).</summary>
    public float[] InverseFrequencies { get; private set; }

    /// <summary>
    /// cos and sin tables covering positions [0, <paramref name="positions"/>), where <paramref name="positions"/> is
    /// the largest position id of the forward plus one.
    /// </summary>
    public (Tensor Cos, Tensor Sin) Tables(int positions)
    {
        if (scaling?.Type == RopeScalingType.Dynamic) UpdateDynamic(positions);
        if (cos is null || cos.Size(0) < positions)
        {
            int capacity = cos is null ? Math.Max(positions, Math.Min(originalMaxPositions, 4096)) : Math.Max(positions, 2 * cos.Size(0));
            (cos, sin) = RotaryTables.Create(capacity, InverseFrequencies);
        }
        return (cos, sin!);
    }

    /// <summary>HF's <c>_dynamic_frequency_update</c>: rescale the base for longer inputs, reset once inputs fit again.</summary>
    private void UpdateDynamic(int positions)
    {
        if (positions > dynamicLength)
        {
            dynamicLength = positions;
            InverseFrequencies = DynamicFrequencies(RotaryDim, theta, scaling!.Factor, originalMaxPositions, positions);
            cos = sin = null;
        }
        else if (positions < originalMaxPositions && dynamicLength > originalMaxPositions)
        {
            dynamicLength = originalMaxPositions;
            InverseFrequencies = RotaryTables.InverseFrequencies(RotaryDim, theta);
            cos = sin = null;
        }
    }

    /// <summary>The inverse frequencies for a rope_scaling (dynamic at its original context length, i.e. unscaled).</summary>
    public static float[] Frequencies(int rotaryDim, double theta, RopeScaling? scaling, int originalMaxPositions)
    {
        var inv = RotaryTables.InverseFrequencies(rotaryDim, theta);
        switch (scaling?.Type)
        {
            case null:
            case RopeScalingType.Dynamic:
                return inv;
            case RopeScalingType.Linear:
                float factor = (float)scaling.Factor;
                for (int i = 0; i < inv.Length; i++) inv[i] /= factor;
                return inv;
            case RopeScalingType.Llama3:
                return Llama3(inv, scaling);
            default:
                throw new NotSupportedException($"rope scaling {scaling.Type} is not supported");
        }
    }

    /// <summary>
    /// Llama 3.1 scaling (HF <c>_compute_llama3_parameters</c>): wavelengths longer than original/low_freq_factor are
    /// slowed by factor, shorter than original/high_freq_factor kept, and the band between interpolated smoothly.
    /// </summary>
    private static float[] Llama3(float[] inv, RopeScaling s)
    {
        float factor = (float)s.Factor, low = (float)s.LowFreqFactor!.Value, high = (float)s.HighFreqFactor!.Value;
        float oldLength = s.OriginalMaxPositionEmbeddings!.Value;
        double lowFreqWavelength = s.OriginalMaxPositionEmbeddings!.Value / s.LowFreqFactor!.Value;
        double highFreqWavelength = s.OriginalMaxPositionEmbeddings!.Value / s.HighFreqFactor!.Value;
        var result = new float[inv.Length];
        for (int i = 0; i < inv.Length; i++)
        {
            float wavelength = (float)(2 * Math.PI) / inv[i];
            float llama = wavelength > lowFreqWavelength ? inv[i] / factor : inv[i];
            float smooth = (oldLength / wavelength - low) / (high - low);
            float smoothed = (1 - smooth) * llama / factor + smooth * llama;
            bool medium = !(wavelength < highFreqWavelength) && !(wavelength > lowFreqWavelength);
            result[i] = medium ? smoothed : llama;
        }
        return result;
    }

    /// <summary>Dynamic NTK scaling (HF <c>_compute_dynamic_ntk_parameters</c>) for a forward needing <paramref name="length"/> positions.</summary>
    private static float[] DynamicFrequencies(int rotaryDim, double theta, double factor, int originalMaxPositions, int length)
    {
        double seqLen = Math.Max(length, originalMaxPositions);
        double scaledBase = theta * Math.Pow(factor * seqLen / originalMaxPositions - (factor - 1), rotaryDim / (double)(rotaryDim - 2));
        return RotaryTables.InverseFrequencies(rotaryDim, scaledBase);
    }
}
