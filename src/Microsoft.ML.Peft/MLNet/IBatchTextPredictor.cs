namespace Microsoft.ML.Peft;

/// <summary>
/// Texts → one prediction per row, in batches (<see cref="ClassifierScorer"/>'s logits, <see cref="EnsembleScorer"/>,
/// <see cref="LaplaceCalibratorPredictor"/>):
/// what <see cref="BatchPredictionDataView{TPrediction}"/> needs to predict ahead of its cursor.
/// </summary>
internal interface IBatchTextPredictor<TPrediction>
{
    /// <summary>How many rows one call should predict together.</summary>
    int BatchSize { get; }

    /// <summary>Predictions for consecutive rows (<paramref name="sentence2"/> null for single-text tasks).</summary>
    TPrediction[] Predict(IReadOnlyList<string> sentence1, IReadOnlyList<string>? sentence2);
}
