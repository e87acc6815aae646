using System.Collections.Immutable;

namespace Microsoft.ML.Calibrators;

/// <summary>One calibration example.</summary>
internal readonly record struct CalibrationExample(float Score, bool Target, float Weight);

/// <summary>Fits the Platt and isotonic calibrators (the algorithms ML.NET uses).</summary>
internal static class CalibratorTraining
{
    /// <summary>
    /// Platt (1999) with the smoothed targets and Levenberg-Marquardt-stabilised Newton steps of Lin, Lin and Weng (2007):
    /// minimises Σ w·[−t log p − (1−t) log(1−p)] with p = 1/(1+exp(A·s + B)), t = (N₊+1)/(N₊+2) for positives and
    /// 1/(N₋+2) for negatives. Converges when the error changes by less than ~1e-3 relatively three times in a row.
    /// </summary>
    public static PlattCalibrator FitPlatt(IReadOnlyList<CalibrationExample> data)
    {
        double prior0 = 0, prior1 = 0;
        foreach (var example in data)
        {
            if (example.Target)
                prior1 += example.Weight;
            else
                prior0 += example.Weight;
        }
        if (data.Count == 0)
            return new PlattCalibrator(0, 0);

        double slope = 0;
        double offset = Math.Log((prior0 + 1) / (prior1 + 1));
        double hiTarget = (prior1 + 1) / (prior1 + 2);
        double loTarget = 1 / (prior0 + 2);
        double lambda = 0.001;
        double oldError = double.MaxValue / 2;
        var p = new float[data.Count];
        Array.Fill(p, (float)((prior1 + 1) / (prior0 + prior1 + 2)));
        int stalls = 0;
        for (int iteration = 0; iteration < 100; iteration++)
        {
            // Hessian [a c; c b] and gradient [d e] of the cross-entropy at the current (slope, offset).
            double a = 0, b = 0, c = 0, d = 0, e = 0;
            for (int i = 0; i < data.Count; i++)
            {
                var example = data[i];
                double target = example.Target ? hiTarget : loTarget;
                double derivative = p[i] * (1 - p[i]) * example.Weight; // float arithmetic, as ML.NET
                double residual = (p[i] - target) * example.Weight;
                a += example.Score * example.Score * derivative;
                b += derivative;
                c += example.Score * derivative;
                d += example.Score * residual;
                e += residual;
            }
            if (Math.Abs(d) < 1e-9 && Math.Abs(e) < 1e-9)
                break;

            double oldSlope = slope, oldOffset = offset, error = 0;
            while (true)
            {
                double det = (a + lambda) * (b + lambda) - c * c;
                if (det == 0)
                {
                    lambda *= 10;
                    continue;
                }
                slope = oldSlope + ((b + lambda) * d - c * e) / det;
                offset = oldOffset + ((a + lambda) * e - c * d) / det;
                error = 0;
                for (int i = 0; i < data.Count; i++)
                {
                    var example = data[i];
                    float q = PlattCalibrator.PredictProbability(example.Score, slope, offset);
                    double target = example.Target ? hiTarget : loTarget;
                    p[i] = q;
                    double logP = q > 0 ? Math.Log(q) : -200;
                    double log1MinusP = q < 1 ? Math.Log(1 - q) : -200;
                    error -= (target * logP + (1 - target) * log1MinusP) * example.Weight;
                }
                if (error < oldError * (1.0 + 1e-7))
                {
                    lambda *= 0.1;
                    break;
                }
                lambda *= 10;
                if (lambda >= 1e6)
                    break;
            }

            double diff = error - oldError;
            double scale = 0.5 * (error + oldError + 1);
            stalls = diff > -1e-3 * scale && diff < 1e-7 * scale ? stalls + 1 : 0;
            oldError = error;
            if (stalls == 3)
                break;
        }
        return new PlattCalibrator(slope, offset);
    }

    /// <summary>
    /// Pool Adjacent Violators over the examples in increasing score order: each example starts a piece; while the new piece
    /// overlaps the previous one in score or does not increase its value, the two merge (weighted mean of targets).
    /// </summary>
    public static IsotonicCalibrator FitIsotonic(IReadOnlyList<CalibrationExample> data)
    {
        var sorted = data.OrderBy(x => x.Score).ToArray();
        var stack = new List<(float Min, float Max, float Value, float N)>();
        foreach (var example in sorted)
        {
            var current = (Min: example.Score, Max: example.Score, Value: example.Target ? 1f : 0f, N: example.Weight);
            while (stack.Count > 0 && (stack[^1].Max >= current.Min || current.Value <= stack[^1].Value))
            {
                var top = stack[^1];
                float n = top.N + current.N;
                current = (top.Min, current.Max, (top.Value * top.N + current.Value * current.N) / n, n);
                stack.RemoveAt(stack.Count - 1);
            }
            stack.Add(current);
        }
        return new IsotonicCalibrator(stack.Select(s => s.Min).ToImmutableArray(), stack.Select(s => s.Max).ToImmutableArray(),
            stack.Select(s => s.Value).ToImmutableArray());
    }
}
