using Microsoft.ML.Data;

namespace Microsoft.ML.AutoML;

/// <summary>Describes the metric an experiment optimises.</summary>
public interface IMetricManager
{
    /// <summary>Whether larger values are better.</summary>
    bool IsMaximize { get; }

    /// <summary>The metric name.</summary>
    string MetricName { get; }
}

/// <summary>A metric manager that evaluates scored data (implementations are internal, as in ML.NET).</summary>
public interface IEvaluateMetricManager : IMetricManager
{
    /// <summary>The metric of the scored data <paramref name="eval"/>.</summary>
    double Evaluate(MLContext context, IDataView eval);
}

/// <summary>Multiclass metrics an experiment can optimise.</summary>
public enum MulticlassClassificationMetric
{
    /// <summary>Micro accuracy.</summary>
    MicroAccuracy,

    /// <summary>Macro accuracy.</summary>
    MacroAccuracy,

    /// <summary>Log-loss.</summary>
    LogLoss,

    /// <summary>Log-loss reduction.</summary>
    LogLossReduction,

    /// <summary>Top-K accuracy.</summary>
    TopKAccuracy,
}

/// <summary>Binary metrics an experiment can optimise.</summary>
public enum BinaryClassificationMetric
{
    /// <summary>Accuracy.</summary>
    Accuracy,

    /// <summary>Area under the ROC curve.</summary>
    AreaUnderRocCurve,

    /// <summary>Area under the precision-recall curve.</summary>
    AreaUnderPrecisionRecallCurve,

    /// <summary>F1 score.</summary>
    F1Score,

    /// <summary>Positive precision.</summary>
    PositivePrecision,

    /// <summary>Positive recall.</summary>
    PositiveRecall,

    /// <summary>Negative precision.</summary>
    NegativePrecision,

    /// <summary>Negative recall.</summary>
    NegativeRecall,
}

/// <summary>Regression metrics an experiment can optimise.</summary>
public enum RegressionMetric
{
    /// <summary>Mean absolute error.</summary>
    MeanAbsoluteError,

    /// <summary>Mean squared error.</summary>
    MeanSquaredError,

    /// <summary>Root mean squared error.</summary>
    RootMeanSquaredError,

    /// <summary>R².</summary>
    RSquared,
}

/// <summary>
/// ML.NET's multiclass metric manager: only MicroAccuracy, MacroAccuracy and TopKAccuracy are maximised. ML.NET also
/// treats LogLossReduction as minimised (a probable ML.NET bug, kept for fidelity).
/// </summary>
internal sealed class MulticlassMetricManager : IEvaluateMetricManager
{
    private readonly MulticlassClassificationMetric _metric;
    private readonly string _label;
    private readonly string _predicted;

    public MulticlassMetricManager(MulticlassClassificationMetric metric, string labelColumn, string predictedColumn)
    {
        _metric = metric;
        _label = labelColumn;
        _predicted = predictedColumn;
    }

    public bool IsMaximize => _metric is MulticlassClassificationMetric.MicroAccuracy or MulticlassClassificationMetric.MacroAccuracy or MulticlassClassificationMetric.TopKAccuracy;

    public string MetricName => _metric.ToString();

    public double Evaluate(MLContext context, IDataView eval)
    {
        var metrics = context.MulticlassClassification.Evaluate(eval, _label, predictedLabelColumnName: _predicted);
        return _metric switch
        {
            MulticlassClassificationMetric.MicroAccuracy => metrics.MicroAccuracy,
            MulticlassClassificationMetric.MacroAccuracy => metrics.MacroAccuracy,
            MulticlassClassificationMetric.LogLoss => metrics.LogLoss,
            MulticlassClassificationMetric.LogLossReduction => metrics.LogLossReduction,
            _ => metrics.TopKAccuracy,
        };
    }
}

/// <summary>Binary metric manager (every binary metric is maximised); evaluates without calibration.</summary>
internal sealed class BinaryMetricManager : IEvaluateMetricManager
{
    private readonly BinaryClassificationMetric _metric;
    private readonly string _label;
    private readonly string _predicted;

    public BinaryMetricManager(BinaryClassificationMetric metric, string labelColumn, string predictedColumn)
    {
        _metric = metric;
        _label = labelColumn;
        _predicted = predictedColumn;
    }

    public bool IsMaximize => true;

    public string MetricName => _metric.ToString();

    public double Evaluate(MLContext context, IDataView eval)
    {
        BinaryClassificationMetrics m = context.BinaryClassification.EvaluateNonCalibrated(eval, _label, predictedLabelColumnName: _predicted);
        return _metric switch
        {
            BinaryClassificationMetric.Accuracy => m.Accuracy,
            BinaryClassificationMetric.AreaUnderRocCurve => m.AreaUnderRocCurve,
            BinaryClassificationMetric.AreaUnderPrecisionRecallCurve => m.AreaUnderPrecisionRecallCurve,
            BinaryClassificationMetric.F1Score => m.F1Score,
            BinaryClassificationMetric.PositivePrecision => m.PositivePrecision,
            BinaryClassificationMetric.PositiveRecall => m.PositiveRecall,
            BinaryClassificationMetric.NegativePrecision => m.NegativePrecision,
            _ => m.NegativeRecall,
        };
    }
}

/// <summary>Regression metric manager (R² is maximised, errors minimised).</summary>
internal sealed class RegressionMetricManager : IEvaluateMetricManager
{
    private readonly RegressionMetric _metric;
    private readonly string _label;
    private readonly string _score;

    public RegressionMetricManager(RegressionMetric metric, string labelColumn, string scoreColumn)
    {
        _metric = metric;
        _label = labelColumn;
        _score = scoreColumn;
    }

    public bool IsMaximize => _metric == RegressionMetric.RSquared;

    public string MetricName => _metric.ToString();

    public double Evaluate(MLContext context, IDataView eval)
    {
        var m = context.Regression.Evaluate(eval, _label, _score);
        return _metric switch
        {
            RegressionMetric.MeanAbsoluteError => m.MeanAbsoluteError,
            RegressionMetric.MeanSquaredError => m.MeanSquaredError,
            RegressionMetric.RootMeanSquaredError => m.RootMeanSquaredError,
            _ => m.RSquared,
        };
    }
}
