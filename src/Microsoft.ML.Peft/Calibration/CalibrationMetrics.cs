namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// Calibration and proper-scoring metrics of a classifier's predicted class probabilities (row-major n×C, labels in
/// [0, C)).
/// </summary>
public static class CalibrationMetrics
{
    /// <summary>Expected calibration error with <paramref name="binCount"/> equal-width bins (Guo et al. 2017; see <see cref="ReliabilityDiagram"/>).</summary>
    public static double ExpectedCalibrationError(ReadOnlySpan<double> probabilities, int classCount, ReadOnlySpan<int> labels, int binCount = 15) =>
        ReliabilityDiagram.Compute(probabilities, classCount, labels, binCount).ExpectedCalibrationError;

    /// <summary>
    /// Adaptive (equal-mass) ECE (Nguyen and O'Connor 2015; Nixon et al. 2019): rows are sorted by top-label confidence
    /// (stably, so ties keep row order) and cut into M consecutive groups whose sizes differ by at most one, the first
    /// n mod M groups taking the extra row (numpy's array_split); ECE = Σ_m (|B_m|/n)·|acc(B_m) − conf(B_m)|. Equal
    /// confidences may fall into different groups. With n &lt; M some groups are empty and contribute 0.
    /// </summary>
    public static double AdaptiveCalibrationError(ReadOnlySpan<double> probabilities, int classCount, ReadOnlySpan<int> labels, int binCount = 15)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(binCount, 1);
        int n = ClassificationInput.Validate(probabilities, classCount, labels);
        var confidence = new double[n];
        var correct = new bool[n];
        var order = new int[n];
        for (int i = 0; i < n; i++)
        {
            (double c, int prediction) = ClassificationInput.TopLabel(probabilities.Slice(i * classCount, classCount));
            confidence[i] = c;
            correct[i] = prediction == labels[i];
            order[i] = i;
        }
        Array.Sort(order, (x, y) => confidence[x] != confidence[y] ? confidence[x].CompareTo(confidence[y]) : x.CompareTo(y));
        double ece = 0;
        int start = 0, baseSize = n / binCount, extra = n % binCount;
        for (int m = 0; m < binCount; m++)
        {
            int size = baseSize + (m < extra ? 1 : 0);
            if (size == 0) continue;
            double confidenceSum = 0;
            int hits = 0;
            for (int k = start; k < start + size; k++)
            {
                confidenceSum += confidence[order[k]];
                if (correct[order[k]]) hits++;
            }
            ece += (double)size / n * Math.Abs((double)hits / size - confidenceSum / size);
            start += size;
        }
        return ece;
    }

    /// <summary>Mean negative log probability of the true class, −(1/n)·Σ_i ln p_{i,y_i} (natural log; +∞ if a true class has probability 0).</summary>
    public static double NegativeLogLikelihood(ReadOnlySpan<double> probabilities, int classCount, ReadOnlySpan<int> labels)
    {
        int n = ClassificationInput.Validate(probabilities, classCount, labels);
        double sum = 0;
        for (int i = 0; i < n; i++) sum -= Math.Log(probabilities[i * classCount + labels[i]]);
        return sum / n;
    }

    /// <summary>
    /// Mean negative log-likelihood of softmax(logits / T): (1/n)·Σ_i [logsumexp(z_i/T) − z_{i,y_i}/T], computed with
    /// the row maximum subtracted so no exponent overflows (exact where probabilities would underflow to 0).
    /// </summary>
    public static double NegativeLogLikelihoodFromLogits(ReadOnlySpan<double> logits, int classCount, ReadOnlySpan<int> labels, double temperature = 1)
    {
        int n = TemperatureScaling.ValidateLogits(logits, classCount, labels);
        if (!(temperature > 0) || !double.IsFinite(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "Temperature must be positive and finite.");
        double sum = 0, beta = 1 / temperature;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<double> row = logits.Slice(i * classCount, classCount);
            double max = double.NegativeInfinity;
            foreach (double z in row) max = Math.Max(max, z);
            double partition = 0;
            foreach (double z in row) partition += Math.Exp(beta * (z - max));
            sum += Math.Log(partition) - beta * (row[labels[i]] - max);
        }
        return sum / n;
    }

    /// <summary>
    /// Multiclass Brier score (Brier 1950): (1/n)·Σ_i Σ_c (p_{i,c} − 1[c = y_i])², in [0, 2]. For two classes this is
    /// twice the binary convention of <see cref="BrierScoreBinary"/>.
    /// </summary>
    public static double BrierScore(ReadOnlySpan<double> probabilities, int classCount, ReadOnlySpan<int> labels)
    {
        int n = ClassificationInput.Validate(probabilities, classCount, labels);
        double sum = 0;
        for (int i = 0; i < n; i++)
        {
            for (int c = 0; c < classCount; c++)
            {
                double d = probabilities[i * classCount + c] - (c == labels[i] ? 1 : 0);
                sum += d * d;
            }
        }
        return sum / n;
    }

    /// <summary>
    /// Binary Brier score with one probability per row, that of the positive class: (1/n)·Σ_i (p_i − y_i)² with
    /// y_i ∈ {0, 1}, in [0, 1] (scikit-learn's <c>brier_score_loss</c>); half the two-class <see cref="BrierScore"/>.
    /// </summary>
    public static double BrierScoreBinary(ReadOnlySpan<double> positiveProbabilities, ReadOnlySpan<int> labels)
    {
        if (positiveProbabilities.Length != labels.Length)
            throw new ArgumentException($"Got {positiveProbabilities.Length} probabilities for {labels.Length} labels.", nameof(positiveProbabilities));
        if (labels.Length == 0) throw new ArgumentException("No rows given.", nameof(labels));
        double sum = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            double p = positiveProbabilities[i];
            if (!(p >= 0 && p <= 1)) throw new ArgumentException($"Probability of row {i} is {p}, outside [0, 1].", nameof(positiveProbabilities));
            if (labels[i] is not (0 or 1)) throw new ArgumentException($"Label of row {i} is {labels[i]}; binary labels are 0 or 1.", nameof(labels));
            sum += (p - labels[i]) * (p - labels[i]);
        }
        return sum / labels.Length;
    }
}
