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
            return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => Write(row().LogitVariances, ref dst));
        }
        if (Binary)
        {
            return index switch
            {
                0 => (ValueGetter<float>)((ref float dst) => dst = (float)row().LogOdds),
                1 => (ValueGetter<float>)((ref float dst) => dst = (float)row().Probabilities[1]),
                _ => (ValueGetter<bool>)((ref bool dst) => dst = row().LogOdds > 0),
            };
        }
        if (index == 0) return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => Write(row().Probabilities, ref dst));
        return (ValueGetter<uint>)((ref uint dst) => dst = (uint)ArgMax(row().Probabilities) + 1);
    }

    private static int ArgMax(double[] p)
    {
        int best = 0;
        for (int i = 1; i < p.Length; i++) if (p[i] > p[best]) best = i;
        return best;
    }

    private static void Write(double[] values, ref VBuffer<float> dst)
    {
        var editor = VBufferEditor.Create(ref dst, values.Length);
        for (int i = 0; i < values.Length; i++) editor.Values[i] = (float)values[i];
        dst = editor.Commit();
    }
}
