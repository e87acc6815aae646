using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML;

/// <summary>Multiclass classification: trainers (as extension methods on <see cref="Trainers"/>), evaluation and cross-validation.</summary>
public sealed class MulticlassClassificationCatalog : TrainCatalogBase
{
    internal MulticlassClassificationCatalog(MLContext context)
        : base(context)
    {
        Trainers = new MulticlassClassificationTrainers(this);
    }

    /// <summary>The target of multiclass trainer extension methods.</summary>
    public MulticlassClassificationTrainers Trainers { get; }

    /// <summary>The target type of multiclass trainer extension methods.</summary>
    public sealed class MulticlassClassificationTrainers : CatalogInstantiatorBase
    {
        internal MulticlassClassificationTrainers(MulticlassClassificationCatalog catalog)
            : base(catalog)
        {
        }
    }

    /// <summary>
    /// Evaluates scored data: <paramref name="scoreColumnName"/> must be a known-size vector of Single (class scores, read as
    /// probabilities for log-loss), the label a Single or a key (key k is class k−1; key 0 is skipped), and the predicted
    /// label column must exist. <paramref name="topKPredictionCount"/> &gt; 0 adds top-K accuracies.
    /// </summary>
    public MulticlassClassificationMetrics Evaluate(IDataView data, string labelColumnName = "Label", string scoreColumnName = "Score",
        string predictedLabelColumnName = "PredictedLabel", int topKPredictionCount = 0)
        => MulticlassEvaluator.Evaluate(data, labelColumnName, scoreColumnName, predictedLabelColumnName, topKPredictionCount);

    /// <summary>Cross-validates <paramref name="estimator"/>: one model and one evaluation per fold.</summary>
    public IReadOnlyList<CrossValidationResult<MulticlassClassificationMetrics>> CrossValidate(IDataView data, IEstimator<ITransformer> estimator,
        int numberOfFolds = 5, string labelColumnName = "Label", string? samplingKeyColumnName = null, int? seed = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(labelColumnName);
        return CrossValidateTrain(data, estimator, numberOfFolds, samplingKeyColumnName, seed)
            .Select(r => new CrossValidationResult<MulticlassClassificationMetrics>(r.Model, Evaluate(r.Scores, labelColumnName), r.Scores, r.Fold))
            .ToArray();
    }
}
