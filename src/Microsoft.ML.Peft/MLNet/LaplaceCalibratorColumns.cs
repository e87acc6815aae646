using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The columns a <see cref="LaplaceCalibratorTransformer"/> appends: the classifier's Score / PredictedLabel (and
/// Probability for binary) again, with the same names, types and annotations (so they hide the MAP ones and
/// <c>Evaluate</c> reads the Bayesian values), then the predictive entropy and the logit variance.
/// </summary>
internal sealed class LaplaceCalibratorColumns : IAppendedColumns<LaplaceRowPrediction>
{
    private readonly PredictionColumns predictions;

    public LaplaceCalibratorColumns(TextClassificationColumns names, int classes, KeyValuesAnnotation? keyValues, string entropy, string logitVariance)
    {
        Names = names;
        Classes = classes;
        Entropy = entropy;
        LogitVariance = logitVariance;
        predictions = new PredictionColumns(names, classes, keyValues);
    }

    public TextClassificationColumns Names { get; }

    public int Classes { get; }

    public string Entropy { get; }

    public string LogitVariance { get; }

    private bool Binary => Names.Kind == ClassificationKind.Binary;

    /// <summary>Number of appended columns.</summary>
    public int Count => predictions.Count + 2;

    public DataViewSchema OutputSchema(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(predictions.OutputSchema(input));
        builder.AddColumn(Entropy, NumberDataViewType.Single);
        builder.AddColumn(LogitVariance, Binary ? NumberDataViewType.Single : new VectorDataViewType(NumberDataViewType.Single, Classes));
        return builder.ToSchema();
    }

    /// <summary>
    /// Getter of appended column <paramref name="index"/>. Binary: Score = ln(p₁/p₀) (so Probability = σ(Score) as
    /// for the classifier), Probability = p₁, PredictedLabel = p₁ &gt; ½. Multiclass: Score = probabilities, PredictedLabel =
    /// the most probable class (1-based key).
    /// </summary>
    public Delegate MakeGetter(int index, Func<LaplaceRowPrediction> row)
    {
        int p = predictions.Count;
        if (index == p) return (ValueGetter<float>)((ref float dst) => dst = (float)row().Entropy);
        if (index == p + 1)
        {
            if (Binary) return (ValueGetter<float>)((ref float dst) => dst = (float)row().MarginVariance);
            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => PredictionColumns.Write(row().LogitVariances, ref dst));
        }
        return predictions.MakeGetter(index, () => row().Probabilities, () => row().LogOdds);
    }
}
