namespace Microsoft.ML.Peft.Calibration;

/// <summary>
/// Temperature scaling (Guo et al. 2017): the single T &gt; 0 minimising the mean negative log-likelihood of
/// softmax(z/T) on held-out logits; calibrated probabilities are then softmax(z/T).
/// </summary>
/// <remarks>
/// With β = 1/T the objective L(β) = (1/n)·Σ_i [logsumexp(β·z_i) − β·z_{i,y_i}] is convex: its derivative
/// L′(β) = (1/n)·Σ_i (E_{softmax(βz_i)}[z] − z_{i,y_i}) is increasing because L″(β) is a mean of variances. So the fit
/// is a 1-D root search for L′ on a bracket [1/T_max, 1/T_min], by Newton steps that fall back to bisection whenever
/// they would leave the bracket: it cannot diverge, needs no learning rate (unlike the usual LBFGS-on-T recipes) and
/// stops when β is known to 1e-12 relative. If the optimum lies outside the bracket (e.g. separable data wanting
/// T → 0), the nearer bound is returned.
/// </remarks>
public static class TemperatureScaling
{
    private const int MaxIterations = 200;

    /// <summary>Fits T on row-major n×C logits and n labels.</summary>
    /// <param name="logits">Row-major n×C.</param>
    /// <param name="classCount">C ≥ 2.</param>
    /// <param name="labels">True classes.</param>
    /// <param name="minTemperature">Lower bound on T (default 0.01).</param>
    /// <param name="maxTemperature">Upper bound on T (default 100).</param>
    /// <returns>The fitted temperature.</returns>
    /// <exception cref="ArgumentException">Shapes disagree, a label is out of range or a logit is not finite (row named).</exception>
    public static double Fit(ReadOnlySpan<double> logits, int classCount, ReadOnlySpan<int> labels, double minTemperature = 0.01, double maxTemperature = 100)
    {
        int n = ValidateLogits(logits, classCount, labels);
        if (classCount < 2) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "Temperature scaling needs at least two classes.");
        if (!(minTemperature > 0) || !(maxTemperature > minTemperature) || !double.IsFinite(maxTemperature))
            throw new ArgumentException($"Temperature bounds must satisfy 0 < min < max < ∞, got [{minTemperature}, {maxTemperature}].", nameof(minTemperature));
        double lo = 1 / maxTemperature, hi = 1 / minTemperature;
        if (Derivatives(logits, classCount, labels, n, lo).First >= 0) return maxTemperature;
        if (Derivatives(logits, classCount, labels, n, hi).First <= 0) return minTemperature;
        double beta = Math.Clamp(1.0, lo, hi);
        for (int iteration = 0; iteration < MaxIterations; iteration++)
        {
            (double first, double second) = Derivatives(logits, classCount, labels, n, beta);
            if (first == 0) break;
            if (first > 0) hi = beta;
            else lo = beta;
            double next = second > 0 ? beta - first / second : double.NaN;
            if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
            bool converged = Math.Abs(next - beta) <= 1e-12 * beta;
            beta = next;
            if (converged || hi - lo <= 1e-15 * beta) break;
        }
        return 1 / beta;
    }

    /// <summary>Float entry point: widens the logits and fits.</summary>
    public static double Fit(ReadOnlySpan<float> logits, int classCount, ReadOnlySpan<int> labels, double minTemperature = 0.01, double maxTemperature = 100)
    {
        var wide = new double[logits.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = logits[i];
        return Fit(wide, classCount, labels, minTemperature, maxTemperature);
    }

    /// <summary>softmax(z/T) of every row, row-major n×C.</summary>
    public static double[] CalibratedProbabilities(ReadOnlySpan<double> logits, int classCount, double temperature)
    {
        if (classCount < 1 || logits.Length % classCount != 0)
            throw new ArgumentException($"Logits have {logits.Length} values, not a multiple of {classCount} classes.", nameof(logits));
        if (!(temperature > 0) || !double.IsFinite(temperature))
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "Temperature must be positive and finite.");
        var result = new double[logits.Length];
        for (int start = 0; start < logits.Length; start += classCount)
        {
            ReadOnlySpan<double> row = logits.Slice(start, classCount);
            double max = double.NegativeInfinity;
            foreach (double z in row) max = Math.Max(max, z);
            double sum = 0;
            for (int c = 0; c < classCount; c++) sum += result[start + c] = Math.Exp((row[c] - max) / temperature);
            for (int c = 0; c < classCount; c++) result[start + c] /= sum;
        }
        return result;
    }

    /// <summary>L′(β) and L″(β) of the mean NLL of softmax(β·z).</summary>
    private static (double First, double Second) Derivatives(ReadOnlySpan<double> logits, int classCount, ReadOnlySpan<int> labels, int n, double beta)
    {
        double first = 0, second = 0;
        for (int i = 0; i < n; i++)
        {
            ReadOnlySpan<double> row = logits.Slice(i * classCount, classCount);
            double max = double.NegativeInfinity;
            foreach (double z in row) max = Math.Max(max, z);
            double partition = 0, mean = 0, meanSquare = 0;
            foreach (double z in row)
            {
                double shifted = z - max, w = Math.Exp(beta * shifted);
                partition += w;
                mean += w * shifted;
                meanSquare += w * shifted * shifted;
            }
            mean /= partition;
            meanSquare /= partition;
            first += mean - (row[labels[i]] - max);
            second += Math.Max(0, meanSquare - mean * mean);
        }
        return (first / n, second / n);
    }

    internal static int ValidateLogits(ReadOnlySpan<double> logits, int classCount, ReadOnlySpan<int> labels)
    {
        if (classCount < 1) throw new ArgumentOutOfRangeException(nameof(classCount), classCount, "At least one class is needed.");
        if (logits.Length != (long)labels.Length * classCount)
            throw new ArgumentException($"Logits have {logits.Length} values, expected labels ({labels.Length}) × classes ({classCount}).", nameof(logits));
        if (labels.Length == 0) throw new ArgumentException("No rows given.", nameof(labels));
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classCount)
                throw new ArgumentException($"Label of row {i} is {labels[i]}, outside [0, {classCount}).", nameof(labels));
            for (int c = 0; c < classCount; c++)
            {
                if (!double.IsFinite(logits[i * classCount + c]))
                    throw new ArgumentException($"Logit of row {i}, class {c} is {logits[i * classCount + c]}.", nameof(logits));
            }
        }
        return labels.Length;
    }
}
