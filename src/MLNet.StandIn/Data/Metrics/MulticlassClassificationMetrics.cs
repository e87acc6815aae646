namespace Microsoft.ML.Data;

/// <summary>Multiclass evaluation results (ML.NET definitions; natural logarithms). The constructor is internal.</summary>
public sealed class MulticlassClassificationMetrics
{
    internal MulticlassClassificationMetrics(double microAccuracy, double macroAccuracy, double logLoss, double logLossReduction,
        int topKPredictionCount, double[]? topKAccuracies, double[] perClassLogLoss, ConfusionMatrix confusionMatrix)
    {
        MicroAccuracy = microAccuracy;
        MacroAccuracy = macroAccuracy;
        LogLoss = logLoss;
        LogLossReduction = logLossReduction;
        TopKPredictionCount = topKPredictionCount;
        TopKAccuracyForAllK = topKAccuracies?.ToList().AsReadOnly();
        PerClassLogLoss = perClassLogLoss.ToList().AsReadOnly();
        ConfusionMatrix = confusionMatrix;
    }

    /// <summary>Mean over rows of −ln p(true class), with p clamped to [1e-15, 1]; a label beyond the score vector counts −ln(1e-15).</summary>
    public double LogLoss { get; }

    /// <summary>(H − LogLoss) / H where H = −Σ (n_c/n) ln(n_c/n) is the log-loss of predicting the test-set class priors.</summary>
    public double LogLossReduction { get; }

    /// <summary>The mean over the classes present in the test set of the per-class accuracy (recall).</summary>
    public double MacroAccuracy { get; }

    /// <summary>The fraction of rows whose highest score (lowest index on ties) is the true class.</summary>
    public double MicroAccuracy { get; }

    /// <summary>The top-K accuracy for K = <see cref="TopKPredictionCount"/> (0 when not requested).</summary>
    public double TopKAccuracy => TopKAccuracyForAllK?.LastOrDefault() ?? 0;

    /// <summary>K, the number of top predictions considered (0 when not requested).</summary>
    public int TopKPredictionCount { get; }

    /// <summary>The top-K accuracy for every K = 1..<see cref="TopKPredictionCount"/> (null when not requested).</summary>
    public IReadOnlyList<double>? TopKAccuracyForAllK { get; }

    /// <summary>Per true class: the mean −ln p(true class) over that class's rows (0 when the class is absent).</summary>
    public IReadOnlyList<double> PerClassLogLoss { get; }

    /// <summary>The confusion matrix.</summary>
    public ConfusionMatrix ConfusionMatrix { get; }
}
