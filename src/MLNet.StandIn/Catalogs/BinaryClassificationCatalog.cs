using Microsoft.ML.Calibrators;
using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML;

/// <summary>Binary classification: trainers, calibrators, evaluation and cross-validation.</summary>
public sealed class BinaryClassificationCatalog : TrainCatalogBase
{
    internal BinaryClassificationCatalog(MLContext context)
        : base(context)
    {
        Trainers = new BinaryClassificationTrainers(this);
        Calibrators = new CalibratorsCatalog(this);
    }

    /// <summary>The target of binary trainer extension methods.</summary>
    public BinaryClassificationTrainers Trainers { get; }

    /// <summary>Calibrators that turn scores into probabilities.</summary>
    public CalibratorsCatalog Calibrators { get; }

    /// <summary>The target type of binary trainer extension methods.</summary>
    public sealed class BinaryClassificationTrainers : CatalogInstantiatorBase
    {
        internal BinaryClassificationTrainers(BinaryClassificationCatalog catalog)
            : base(catalog)
        {
        }
    }

    /// <summary>Calibrator estimators.</summary>
    public sealed class CalibratorsCatalog : CatalogInstantiatorBase
    {
        internal CalibratorsCatalog(BinaryClassificationCatalog catalog)
            : base(catalog)
        {
        }

        /// <summary>Platt scaling: fits p = 1 / (1 + exp(Slope·score + Offset)) to a Boolean label.</summary>
        public PlattCalibratorEstimator Platt(string labelColumnName = "Label", string scoreColumnName = "Score", string? exampleWeightColumnName = null)
            => new(labelColumnName, scoreColumnName, exampleWeightColumnName);

        /// <summary>A Platt calibrator with fixed parameters (no training).</summary>
        public FixedPlattCalibratorEstimator Platt(double slope, double offset, string scoreColumnName = "Score")
            => new(slope, offset, scoreColumnName);

        /// <summary>Isotonic regression (pool adjacent violators): a monotone piecewise mapping from score to probability.</summary>
        public IsotonicCalibratorEstimator Isotonic(string labelColumnName = "Label", string scoreColumnName = "Score", string? exampleWeightColumnName = null)
            => new(labelColumnName, scoreColumnName, exampleWeightColumnName);
    }

    /// <summary>Evaluates scored data with a calibrated probability (log-losses in bits).</summary>
    public CalibratedBinaryClassificationMetrics Evaluate(IDataView data, string labelColumnName = "Label", string scoreColumnName = "Score",
        string probabilityColumnName = "Probability", string predictedLabelColumnName = "PredictedLabel")
        => BinaryEvaluator.EvaluateCalibrated(data, labelColumnName, scoreColumnName, probabilityColumnName, predictedLabelColumnName);

    /// <summary>Evaluates scored data without a probability column.</summary>
    public BinaryClassificationMetrics EvaluateNonCalibrated(IDataView data, string labelColumnName = "Label", string scoreColumnName = "Score",
        string predictedLabelColumnName = "PredictedLabel")
        => BinaryEvaluator.EvaluateNonCalibrated(data, labelColumnName, scoreColumnName, predictedLabelColumnName);

    /// <summary>Cross-validates with calibrated evaluation.</summary>
    public IReadOnlyList<CrossValidationResult<CalibratedBinaryClassificationMetrics>> CrossValidate(IDataView data, IEstimator<ITransformer> estimator,
        int numberOfFolds = 5, string labelColumnName = "Label", string? samplingKeyColumnName = null, int? seed = null)
        => CrossValidateTrain(data, estimator, numberOfFolds, samplingKeyColumnName, seed)
            .Select(r => new CrossValidationResult<CalibratedBinaryClassificationMetrics>(r.Model, Evaluate(r.Scores, labelColumnName), r.Scores, r.Fold))
            .ToArray();

    /// <summary>Cross-validates with non-calibrated evaluation.</summary>
    public IReadOnlyList<CrossValidationResult<BinaryClassificationMetrics>> CrossValidateNonCalibrated(IDataView data, IEstimator<ITransformer> estimator,
        int numberOfFolds = 5, string labelColumnName = "Label", string? samplingKeyColumnName = null, int? seed = null)
        => CrossValidateTrain(data, estimator, numberOfFolds, samplingKeyColumnName, seed)
            .Select(r => new CrossValidationResult<BinaryClassificationMetrics>(r.Model, EvaluateNonCalibrated(r.Scores, labelColumnName), r.Scores, r.Fold))
            .ToArray();
}
