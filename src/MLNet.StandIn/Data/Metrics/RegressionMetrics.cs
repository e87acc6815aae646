namespace Microsoft.ML.Data;

/// <summary>Regression evaluation results. The constructor is internal.</summary>
public sealed class RegressionMetrics
{
    internal RegressionMetrics(double meanAbsoluteError, double meanSquaredError, double rootMeanSquaredError, double lossFunction, double rSquared)
    {
        MeanAbsoluteError = meanAbsoluteError;
        MeanSquaredError = meanSquaredError;
        RootMeanSquaredError = rootMeanSquaredError;
        LossFunction = lossFunction;
        RSquared = rSquared;
    }

    /// <summary>Mean of |label − score|.</summary>
    public double MeanAbsoluteError { get; }

    /// <summary>Mean of (label − score)².</summary>
    public double MeanSquaredError { get; }

    /// <summary>√<see cref="MeanSquaredError"/>.</summary>
    public double RootMeanSquaredError { get; }

    /// <summary>Mean of the squared loss (score − label)², computed in single precision per row as ML.NET's SquaredLoss does.</summary>
    public double LossFunction { get; }

    /// <summary>1 − Σ(label − score)² / Σ(label − mean label)².</summary>
    public double RSquared { get; }
}
