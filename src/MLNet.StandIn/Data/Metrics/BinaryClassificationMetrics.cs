namespace Microsoft.ML.Data;

/// <summary>Binary evaluation results; a row is predicted positive when its raw score is &gt; 0. The constructor is internal.</summary>
public class BinaryClassificationMetrics
{
    internal BinaryClassificationMetrics(double auc, double accuracy, double positivePrecision, double positiveRecall,
        double negativePrecision, double negativeRecall, double f1Score, double auprc, ConfusionMatrix confusionMatrix)
    {
        AreaUnderRocCurve = auc;
        Accuracy = accuracy;
        PositivePrecision = positivePrecision;
        PositiveRecall = positiveRecall;
        NegativePrecision = negativePrecision;
        NegativeRecall = negativeRecall;
        F1Score = f1Score;
        AreaUnderPrecisionRecallCurve = auprc;
        ConfusionMatrix = confusionMatrix;
    }

    /// <summary>P(score of a positive &gt; score of a negative) + ½ P(equal): the area under the ROC curve.</summary>
    public double AreaUnderRocCurve { get; }

    /// <summary>(TP + TN) / all.</summary>
    public double Accuracy { get; }

    /// <summary>TP / (TP + FP), 0 when nothing is predicted positive.</summary>
    public double PositivePrecision { get; }

    /// <summary>TP / (TP + FN), 0 when there are no positives.</summary>
    public double PositiveRecall { get; }

    /// <summary>TN / (TN + FN), 0 when nothing is predicted negative.</summary>
    public double NegativePrecision { get; }

    /// <summary>TN / (TN + FP), 0 when there are no negatives.</summary>
    public double NegativeRecall { get; }

    /// <summary>2 P R / (P + R) of the positive precision and recall (NaN when both are 0, as in ML.NET).</summary>
    public double F1Score { get; }

    /// <summary>The area under the precision-recall curve (lower-trapezoid estimator, rows in descending score order).</summary>
    public double AreaUnderPrecisionRecallCurve { get; }

    /// <summary>The confusion matrix with classes "positive" and "negative".</summary>
    public ConfusionMatrix ConfusionMatrix { get; }
}

/// <summary>Binary evaluation results with log-losses of the calibrated probability (base-2 logarithms). The constructor is internal.</summary>
public sealed class CalibratedBinaryClassificationMetrics : BinaryClassificationMetrics
{
    internal CalibratedBinaryClassificationMetrics(BinaryClassificationMetrics basic, double logLoss, double logLossReduction, double entropy)
        : base(basic.AreaUnderRocCurve, basic.Accuracy, basic.PositivePrecision, basic.PositiveRecall, basic.NegativePrecision,
            basic.NegativeRecall, basic.F1Score, basic.AreaUnderPrecisionRecallCurve, basic.ConfusionMatrix)
    {
        LogLoss = logLoss;
        LogLossReduction = logLossReduction;
        Entropy = entropy;
    }

    /// <summary>Mean of −log2 p for positives and −log2(1 − p) for negatives (rows with a NaN probability excluded; no clamping).</summary>
    public double LogLoss { get; }

    /// <summary>(H − LogLoss) / H with H the binary entropy (base 2) of the positive rate among the log-loss rows.</summary>
    public double LogLossReduction { get; }

    /// <summary>The binary entropy (base 2) of the test set's positive rate.</summary>
    public double Entropy { get; }
}
