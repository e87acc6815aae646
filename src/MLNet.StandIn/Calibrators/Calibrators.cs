using System.Collections.Immutable;

namespace Microsoft.ML.Calibrators;

/// <summary>Maps a raw classifier score to a probability.</summary>
public interface ICalibrator
{
    /// <summary>The probability of the positive class for raw score <paramref name="output"/>.</summary>
    float PredictProbability(float output);
}

/// <summary>The Platt (sigmoid) calibrator: p = 1 / (1 + exp(<see cref="Slope"/>·score + <see cref="Offset"/>)); NaN passes through.</summary>
public sealed class PlattCalibrator : ICalibrator
{
    internal PlattCalibrator(double slope, double offset)
    {
        Slope = slope;
        Offset = offset;
    }

    /// <summary>The slope (negative for a score that grows with the positive class).</summary>
    public double Slope { get; }

    /// <summary>The offset.</summary>
    public double Offset { get; }

    /// <inheritdoc/>
    public float PredictProbability(float output) => float.IsNaN(output) ? output : PredictProbability(output, Slope, Offset);

    internal static float PredictProbability(float output, double slope, double offset) => (float)(1 / (1 + Math.Exp(slope * output + offset)));
}

/// <summary>
/// The isotonic (PAV) calibrator: a non-decreasing step function of the score with linear interpolation between
/// pieces, constant beyond the ends, and outputs clamped to [1e-15, 1 − 1e-15].
/// </summary>
public sealed class IsotonicCalibrator : ICalibrator
{
    private const float MinToReturn = (float)1e-15;
    private const float MaxToReturn = 1 - MinToReturn;

    /// <summary>The lower score bound of each piece.</summary>
    public readonly ImmutableArray<float> Mins;

    /// <summary>The upper score bound of each piece.</summary>
    public readonly ImmutableArray<float> Maxes;

    /// <summary>The probability of each piece.</summary>
    public readonly ImmutableArray<float> Values;

    internal IsotonicCalibrator(ImmutableArray<float> mins, ImmutableArray<float> maxes, ImmutableArray<float> values)
    {
        if (mins.Length != maxes.Length || mins.Length != values.Length)
            throw new ArgumentException("Isotonic calibrator pieces need one min, max and value each.");
        Mins = mins;
        Maxes = maxes;
        Values = values;
    }

    /// <inheritdoc/>
    public float PredictProbability(float output)
    {
        if (float.IsNaN(output))
            return output;
        float p = FindValue(output);
        return p < MinToReturn ? MinToReturn : p > MaxToReturn ? MaxToReturn : p;
    }

    private float FindValue(float score)
    {
        int count = Mins.Length;
        if (count == 0)
            return 0;
        if (score < Mins[0])
            return Values[0];
        if (score > Maxes[count - 1])
            return Values[count - 1];
        int lo = 0, hi = count - 1;
        while (lo < hi)
        {
            int mid = (lo + hi) >>> 1;
            if (Maxes[mid] < score)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (score >= Mins[lo])
            return Values[lo];
        float t = (score - Maxes[lo - 1]) / (Mins[lo] - Maxes[lo - 1]);
        return Values[lo - 1] + t * (Values[lo] - Values[lo - 1]);
    }
}
