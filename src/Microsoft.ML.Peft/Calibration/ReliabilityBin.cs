namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// One confidence bin of a reliability diagram: rows whose top-label confidence lies in (<see cref="Lower"/>,
/// <see cref="Upper"/>], how many there are, the fraction predicted correctly and their mean confidence
/// (both 0 for an empty bin).
/// </summary>
public readonly record struct ReliabilityBin(double Lower, double Upper, int Count, double Accuracy, double MeanConfidence)
{
    /// <summary>|accuracy − mean confidence|, the bin's calibration gap.</summary>
    public double Gap => Math.Abs(Accuracy - MeanConfidence);
}
