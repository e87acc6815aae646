using Microsoft.ML.Data;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft;

/// <summary>
/// The columns a LoRA text classifier appends, their types and annotations (as ML.NET's scorers emit them), and the
/// getters that turn one row's logits into their values.
/// </summary>
internal sealed class PredictionColumns : IAppendedColumns<float[]>
{
    private readonly TextClassificationColumns names;
    private readonly int numLabels;
    private readonly KeyValuesAnnotation? keyValues;

    public PredictionColumns(TextClassificationColumns names, int numLabels, KeyValuesAnnotation? keyValues)
    {
        this.names = names;
        this.numLabels = numLabels;
        this.keyValues = keyValues;
    }

    /// <summary>Number of appended columns.</summary>
    public int Count => names.Kind == ClassificationKind.Binary ? 3 : 2;

    /// <summary>The input columns followed by the prediction columns.</summary>
    public DataViewSchema OutputSchema(DataViewSchema input)
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(input);
        if (names.Kind == ClassificationKind.Multiclass)
        {
            var score = ScoreAnnotations("MulticlassClassification", "Score");
            if (keyValues is not null)
            {
                keyValues.AddTo(score, "TrainingLabelValues");
                if (keyValues.ItemType is TextDataViewType) keyValues.AddTo(score, "SlotNames");
            }
            builder.AddColumn(names.Score, new VectorDataViewType(NumberDataViewType.Single, numLabels), score.ToAnnotations());
            var predicted = ScoreAnnotations("MulticlassClassification", "PredictedLabel");
            keyValues?.AddTo(predicted, "KeyValues");
            builder.AddColumn(names.PredictedLabel, new KeyDataViewType(typeof(uint), numLabels), predicted.ToAnnotations());
        }
        else
        {
            builder.AddColumn(names.Score, NumberDataViewType.Single, ScoreAnnotations("BinaryClassification", "Score").ToAnnotations());
            var probability = ScoreAnnotations("BinaryClassification", "Probability");
            probability.AddPrimitiveValue("IsNormalized", BooleanDataViewType.Instance, true);
            builder.AddColumn(names.Probability, NumberDataViewType.Single, probability.ToAnnotations());
            builder.AddColumn(names.PredictedLabel, BooleanDataViewType.Instance, ScoreAnnotations("BinaryClassification", "PredictedLabel").ToAnnotations());
        }
        return builder.ToSchema();
    }

    /// <summary>
    /// The getter of appended column <paramref name="index"/> (0 = Score, then PredictedLabel, or Probability and
    /// PredictedLabel for binary) over <paramref name="logits"/>, which yields the current row's logits.
    /// </summary>
    public Delegate MakeGetter(int index, Func<float[]> logits)
    {
        if (names.Kind == ClassificationKind.Multiclass)
        {
            if (index == 0)
            {
                return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) =>
                {
                    var p = ClassifierInference.Softmax(logits());
                    var editor = VBufferEditor.Create(ref dst, p.Length);
                    p.CopyTo(editor.Values);
                    dst = editor.Commit();
                });
            }
            return (ValueGetter<uint>)((ref uint dst) => dst = (uint)ClassifierInference.ArgMax(logits()) + 1);
        }
        return index switch
        {
            0 => (ValueGetter<float>)((ref float dst) => dst = (float)Margin(logits())),
            1 => (ValueGetter<float>)((ref float dst) => dst = (float)(1 / (1 + Math.Exp(-Margin(logits()))))),
            _ => (ValueGetter<bool>)((ref bool dst) => dst = Margin(logits()) > 0),
        };
    }

    /// <summary>
    /// The getter of appended column <paramref name="index"/> from a predictive distribution instead of logits (an
    /// ensemble's mean, a Laplace predictive). Binary: Score = <paramref name="logOdds"/> ln(p₁/p₀) (so Probability =
    /// σ(Score) as for the classifier), Probability = p₁, PredictedLabel = Score &gt; 0. Multiclass: Score =
    /// <paramref name="probabilities"/>, PredictedLabel = the most probable class (1-based key, first on ties).
    /// </summary>
    public Delegate MakeGetter(int index, Func<double[]> probabilities, Func<double> logOdds)
    {
        if (names.Kind == ClassificationKind.Multiclass)
        {
            if (index == 0) return (ValueGetter<VBuffer<float>>)((ref VBuffer<float> dst) => Write(probabilities(), ref dst));
            return (ValueGetter<uint>)((ref uint dst) => dst = (uint)ArgMax(probabilities()) + 1);
        }
        return index switch
        {
            0 => (ValueGetter<float>)((ref float dst) => dst = (float)logOdds()),
            1 => (ValueGetter<float>)((ref float dst) => dst = (float)probabilities()[1]),
            _ => (ValueGetter<bool>)((ref bool dst) => dst = logOdds() > 0),
        };
    }

    /// <summary>Writes <paramref name="values"/> as a dense float vector into <paramref name="dst"/>.</summary>
    internal static void Write(double[] values, ref VBuffer<float> dst)
    {
        var editor = VBufferEditor.Create(ref dst, values.Length);
        for (int i = 0; i < values.Length; i++) editor.Values[i] = (float)values[i];
        dst = editor.Commit();
    }

    private static int ArgMax(double[] p)
    {
        int best = 0;
        for (int i = 1; i < p.Length; i++)
        {
            if (p[i] > p[best]) best = i;
        }
        return best;
    }

    /// <summary>logit₁ − logit₀ in double: the binary raw score (log-odds of the positive class).</summary>
    private static double Margin(float[] logits) => (double)logits[1] - logits[0];

    private static DataViewSchema.Annotations.Builder ScoreAnnotations(string columnKind, string valueKind)
    {
        var builder = new DataViewSchema.Annotations.Builder();
        builder.AddPrimitiveValue("ScoreColumnKind", TextDataViewType.Instance, columnKind.AsMemory());
        builder.AddPrimitiveValue("ScoreValueKind", TextDataViewType.Instance, valueKind.AsMemory());
        return builder;
    }
}
