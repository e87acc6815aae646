namespace Microsoft.ML.Peft.Calibration;

/// <summary>Validation and top-label extraction shared by the calibration metrics.</summary>
internal static class ClassificationInput
{
    /// <summary>How far a row of probabilities may sum from 1 (float softmax outputs carry ~1e-7·C of rounding).</summary>
    public const double RowSumTolerance = 1e-3;

    /// <summary>
    /// Checks an n×C probability matrix and n labels: matching lengths, labels in [0, C), entries finite and in [0, 1],
    /// rows summing to 1 within <see cref="RowSumTolerance"/>. Returns n.
    /// </summary>
    public static int Validate(ReadOnlySpan<double> probabilities, int classCount, ReadOnlySpan<int> labels)
    {
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "At least one class is needed.");
        if (probabilities.Length != (long)labels.Length * classCount)
            throw new ArgumentException($"Probabilities have {probabilities.Length} values, expected labels ({labels.Length}) × classes ({classCount}).", nameof(probabilities));
        if (labels.Length == 0) throw new ArgumentException("No rows given.", nameof(labels));
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"Label of row {i} is {labels[i]}, outside [0, {classCount}).", nameof(labels));
            double sum = 0;
            for (int c = 0; c < classCount; c++)
            {
                double p = probabilities[i * classCount + c];
                if (!(p >= 0 && p <= 1))
                    throw new ArgumentException($"Probability of row {i}, class {c} is {p}, outside [0, 1].", nameof(probabilities));
                sum += p;
            }
            if (Math.Abs(sum - 1) > RowSumTolerance)
                throw new ArgumentException($"Probabilities of row {i} sum to {sum}, not 1.", nameof(probabilities));
        }
        return labels.Length;
    }

    /// <summary>Top-label confidence max_c p_c and prediction argmax_c p_c (the first on ties, as numpy/PyTorch argmax).</summary>
    public static (double Confidence, int Prediction) TopLabel(ReadOnlySpan<double> row)
    {
        int best = 0;
        for (int c = 1; c < row.Length; c++)
        {
            if (row[c] > row[best]) best = c;
        }
        return (row[best], best);
    }
}
