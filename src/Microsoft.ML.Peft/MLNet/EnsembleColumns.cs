using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The columns an <see cref="EnsembleTextClassificationTransformer"/> appends: Score / PredictedLabel (and Probability
/// for binary) with the single classifier's names, types and annotations (so <c>Evaluate</c> reads the ensemble's
/// values), then the predictive entropy and the mutual information.
/// </summary>
internal sealed class EnsembleColumns : IAppendedColumns<EnsembleRowPrediction>
{
    private readonly PredictionColumns predictions;

    public EnsembleColumns(TextClassificationColumns names, int classes, KeyValuesAnnotation? keyValues, string entropy, string mutualInformation)
    {
        Names = names;
        Entropy = entropy;
        MutualInformation = mutualInformation;
        predictions = new PredictionColumns(names, classes, keyValues);
    }

    public TextClassificationColumns Names { get; }

    public string Entropy { get; }

    public string MutualInformation { get; }

    /// <summary>Number of appended columns.</summary>
    public int Count => predictions.Count + 2;

    public DataViewSchema OutputSchema(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(predictions.OutputSchema(input));
        builder.AddColumn(Entropy, NumberDataViewType.Single);
        builder.AddColumn(MutualInformation, NumberDataViewType.Single);
        return builder.ToSchema();
    }

    /// <summary>
    /// Getter of appended column <paramref name="index"/>. Binary: Score = ln(p̄₁/p̄₀) (Probability = σ(Score) as for the
    /// single classifier), Probability = p̄₁, PredictedLabel = Score &gt; 0. Multiclass: Score = p̄, PredictedLabel = the
    /// most probable class (1-based key, first on ties).
    /// </summary>
    public Delegate MakeGetter(int index, Func<EnsembleRowPrediction> row)
    {
        int p = predictions.Count;
        if (index == p) return (ValueGetter<float>)((ref float dst) => dst = (float)row().Entropy);
        if (index == p + 1) return (ValueGetter<float>)((ref float dst) => dst = (float)row().MutualInformation);
        return predictions.MakeGetter(index, () => row().Probabilities, () => row().LogOdds);
    }
}
