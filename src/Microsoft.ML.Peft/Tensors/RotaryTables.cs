namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// cos/sin tables for <see cref="Tensor.ApplyRotary"/>, computed the way Hugging Face does in float32:
/// inv_freq[i] = 1/θ^(2i/R), angle = position·inv_freq[i], then cos and sin of the float angle.
/// </summary>
public static class RotaryTables
{
    /// <summary>The standard inverse frequencies 1/θ^(2i/R) for i in [0, R/2), in float32 as HF computes them.</summary>
    public static float[] InverseFrequencies(int rotaryDim, double theta)
    {
        if (rotaryDim <= 0 || rotaryDim % 2 != 0) throw new ArgumentOutOfRangeException(nameof(rotaryDim), $"rotary dimension {rotaryDim} must be positive and even");
        var inv = new float[rotaryDim / 2];
        for (int i = 0; i < inv.Length; i++) inv[i] = 1f / MathF.Pow((float)theta, (2 * i) / (float)rotaryDim);
        return inv;
    }

    /// <summary>[maxPositions, inverseFrequencies.Length] cos and sin tables (created outside any scope: they are model constants).</summary>
    public static (Tensor Cos, Tensor Sin) Create(int maxPositions, ReadOnlySpan<float> inverseFrequencies)
    {
        int half = inverseFrequencies.Length;
        var cos = new float[maxPositions * half];
        var sin = new float[maxPositions * half];
        for (int p = 0; p < maxPositions; p++)
        {
            for (int i = 0; i < half; i++)
            {
                float angle = p * inverseFrequencies[i];
                cos[p * half + i] = MathF.Cos(angle);
                sin[p * half + i] = MathF.Sin(angle);
            }
        }
        using (TensorScope.Untracked()) return (Tensor.From(cos, maxPositions, half), Tensor.From(sin, maxPositions, half));
    }

    /// <summary>Tables for the standard RoPE with base <paramref name="theta"/>.</summary>
    public static (Tensor Cos, Tensor Sin) Create(int maxPositions, int rotaryDim, double theta) =>
        Create(maxPositions, InverseFrequencies(rotaryDim, theta));
}
