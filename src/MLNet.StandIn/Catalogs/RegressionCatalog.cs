using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML;

/// <summary>Regression: trainers, evaluation and cross-validation.</summary>
public sealed class RegressionCatalog : TrainCatalogBase
{
    internal RegressionCatalog(MLContext context)
        : base(context)
    {
        Trainers = new RegressionTrainers(this);
    }

    /// <summary>The target of regression trainer extension methods.</summary>
    public RegressionTrainers Trainers { get; }

    /// <summary>The target type of regression trainer extension methods.</summary>
    public sealed class RegressionTrainers : CatalogInstantiatorBase
    {
        internal RegressionTrainers(RegressionCatalog catalog)
            : base(catalog)
        {
        }
    }

    /// <summary>Evaluates scored data (Single label and score).</summary>
    public RegressionMetrics Evaluate(IDataView data, string labelColumnName = "Label", string scoreColumnName = "Score")
        => RegressionEvaluator.Evaluate(data, labelColumnName, scoreColumnName);

    /// <summary>Cross-validates <paramref name="estimator"/>.</summary>
    public IReadOnlyList<CrossValidationResult<RegressionMetrics>> CrossValidate(IDataView data, IEstimator<ITransformer> estimator,
        int numberOfFolds = 5, string labelColumnName = "Label", string? samplingKeyColumnName = null, int? seed = null)
        => CrossValidateTrain(data, estimator, numberOfFolds, samplingKeyColumnName, seed)
            .Select(r => new CrossValidationResult<RegressionMetrics>(r.Model, Evaluate(r.Scores, labelColumnName), r.Scores, r.Fold))
            .ToArray();
}
