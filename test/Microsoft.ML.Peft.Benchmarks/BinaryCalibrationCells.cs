using System.Globalization;
using Microsoft.ML.Peft.Calibration;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>The quality cells the calibration benchmarks (laplace, ensembles) print for a binary classifier's dev scores.</summary>
internal static class BinaryCalibrationCells
{
    /// <summary>"accuracy % | ECE % (15 bins) | NLL (nats) | Brier" for P(label 1) = <paramref name="positive"/>.</summary>
    public static string Format(double[] positive, int[] labels)
    {
        var p = new double[positive.Length * 2];
        for (int i = 0; i < positive.Length; i++)
        {
            p[2 * i] = 1 - positive[i];
            p[2 * i + 1] = positive[i];
        }
        int correct = 0;
        for (int i = 0; i < labels.Length; i++) if ((positive[i] > 0.5 ? 1 : 0) == labels[i]) correct++;
        return string.Create(CultureInfo.InvariantCulture,
            $"{100.0 * correct / labels.Length:F2} | {100 * CalibrationMetrics.ExpectedCalibrationError(p, 2, labels):F2} | " +
            $"{CalibrationMetrics.NegativeLogLikelihood(p, 2, labels):F4} | {CalibrationMetrics.BrierScoreBinary(positive, labels):F4}");
    }
}
