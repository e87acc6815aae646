namespace Microsoft.ML.Peft;

/// <summary>Catalog entry points of <see cref="LaplaceCalibrator"/> (Laplace-LoRA after a LoRA text classifier).</summary>
public static class LaplaceCalibratorCatalog
{
    /// <summary>
    /// Laplace-LoRA calibration of the binary LoRA text classifier just before it in the chain: Score / Probability /
    /// PredictedLabel become the Bayesian predictive; PredictiveEntropy and LogitVariance are added.
    /// </summary>
    public static LaplaceCalibrator Laplace(this BinaryClassificationCatalog.CalibratorsCatalog catalog, LaplaceCalibrator.Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LaplaceCalibrator(options, ClassificationKind.Binary);
    }

    /// <summary>Laplace-LoRA calibration of the binary LoRA text classifier just before it in the chain.</summary>
    public static LaplaceCalibrator LaplaceCalibrator(this BinaryClassificationCatalog catalog, LaplaceCalibrator.Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LaplaceCalibrator(options, ClassificationKind.Binary);
    }

    /// <summary>
    /// Laplace-LoRA calibration of the multiclass LoRA text classifier just before it in the chain: Score (class
    /// probabilities) and PredictedLabel become the Bayesian predictive; PredictiveEntropy and LogitVariance are added.
    /// </summary>
    public static LaplaceCalibrator LaplaceCalibrator(this MulticlassClassificationCatalog catalog, LaplaceCalibrator.Options? options = null)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        return new LaplaceCalibrator(options, ClassificationKind.Multiclass);
    }
}
