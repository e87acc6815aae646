using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// ML.NET's multiclass evaluator. Per row (rows with a missing, negative or fractional label, or a non-finite score, are
/// skipped): the predicted class is the arg-max of Score (lowest index on ties); the rank of the true class counts the
/// classes scored higher, or equal with a lower index; log-loss is −ln(clamp(p_true, 1e-15f, 1)), and a label beyond the
/// score vector (a class unseen in training) costs −ln(1e-15f) and is never correct.
/// </summary>
internal static class MulticlassEvaluator
{
    private const float Epsilon = (float)1e-15;

    public static MulticlassClassificationMetrics Evaluate(IDataView data, string labelColumnName, string scoreColumnName,
        string predictedLabelColumnName, int topKPredictionCount)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (topKPredictionCount < 0)
            throw new ArgumentOutOfRangeException(nameof(topKPredictionCount), "topKPredictionCount must be non-negative.");
        var schema = data.Schema;
        var label = SchemaErrors.Find(schema, "label", labelColumnName);
        var score = SchemaErrors.Find(schema, "score", scoreColumnName);
        SchemaErrors.Find(schema, "predicted label", predictedLabelColumnName);
        if (!LabelReader.IsSupported(label.Type, allowBoolean: false))
            throw new ArgumentOutOfRangeException(nameof(labelColumnName),
                $"Label column '{label.Name}' has type '{label.Type}' but must be a float or a known-cardinality key");
        if (score.Type is not VectorDataViewType { ItemType: NumberDataViewType, IsKnownSize: true } scoreType
            || scoreType.ItemType != NumberDataViewType.Single || scoreType.Size < 2)
            throw new ArgumentOutOfRangeException(nameof(scoreColumnName),
                $"Score column '{score.Name}' has type '{score.Type}' but must be a known-size vector of Single with at least 2 slots");
        int n = scoreType.Size;
        var classNames = ClassNames(score, n);

        double numInstances = 0, numCorrect = 0, totalLogLoss = 0;
        var classCount = new double[n];
        var classLogLoss = new double[n];
        var seenRanks = new double[n + 1];
        var confusion = Enumerable.Range(0, n).Select(_ => new double[n]).ToArray();
        var scores = new float[n];
        using (var cursor = data.GetRowCursor(new[] { label, score }))
        {
            var readLabel = LabelReader.Create(cursor, label);
            var scoreGetter = cursor.GetGetter<VBuffer<float>>(score);
            VBuffer<float> buffer = default;
            while (cursor.MoveNext())
            {
                float labelValue = readLabel();
                if (float.IsNaN(labelValue) || labelValue < 0 || labelValue != (int)labelValue)
                    continue;
                scoreGetter(ref buffer);
                if (buffer.Length != n)
                    throw new InvalidOperationException($"Score column '{score.Name}' has a row with {buffer.Length} values; its type says {n}.");
                buffer.CopyTo(scores);
                if (!AllFinite(scores))
                    continue;
                int trueClass = (int)labelValue;
                int assigned = ArgMax(scores);
                int rank = trueClass < n ? Rank(scores, trueClass) : n;
                double logLoss = trueClass < n
                    ? -Math.Log(Math.Min(1, Math.Max(Epsilon, scores[trueClass])))
                    : -Math.Log(Epsilon);

                numInstances++;
                totalLogLoss += logLoss;
                seenRanks[rank]++;
                if (trueClass < n)
                {
                    classCount[trueClass]++;
                    classLogLoss[trueClass] += logLoss;
                    confusion[trueClass][assigned]++;
                    if (assigned == trueClass)
                        numCorrect++;
                }
            }
        }

        double microAccuracy = numInstances > 0 ? numCorrect / numInstances : 0;
        double macroSum = 0;
        int nonEmpty = 0;
        for (int i = 0; i < n; i++)
        {
            if (classCount[i] > 0)
            {
                nonEmpty++;
                macroSum += confusion[i][i] / classCount[i];
            }
        }
        double macroAccuracy = numInstances > 0 && nonEmpty > 0 ? macroSum / nonEmpty : 0;
        double logLossMean = numInstances > 0 ? totalLogLoss / numInstances : 0;
        double entropy = 0;
        for (int i = 0; i < n; i++)
        {
            if (classCount[i] != 0)
                entropy += classCount[i] * Math.Log(classCount[i] / numInstances);
        }
        entropy /= -numInstances;
        double reduction = (entropy - logLossMean) / entropy;
        double[]? topK = null;
        if (topKPredictionCount > 0)
        {
            topK = new double[topKPredictionCount];
            double cumulative = 0;
            for (int k = 0; k < topKPredictionCount; k++)
            {
                if (k < n)
                    cumulative += seenRanks[k];
                topK[k] = numInstances > 0 ? cumulative / numInstances : 0;
            }
        }
        var perClassLogLoss = new double[n];
        for (int i = 0; i < n; i++)
            perClassLogLoss[i] = classCount[i] > 0 ? classLogLoss[i] / classCount[i] : 0;
        var matrix = new ConfusionMatrix(confusion, classNames, isSampled: false, isBinary: false);
        return new MulticlassClassificationMetrics(microAccuracy, macroAccuracy, logLossMean, reduction, topKPredictionCount, topK, perClassLogLoss, matrix);
    }

    private static bool AllFinite(float[] values)
    {
        foreach (float v in values)
        {
            if (!float.IsFinite(v))
                return false;
        }
        return true;
    }

    private static int ArgMax(float[] scores)
    {
        int best = 0;
        for (int i = 1; i < scores.Length; i++)
        {
            if (scores[i] > scores[best])
                best = i;
        }
        return best;
    }

    private static int Rank(float[] scores, int trueClass)
    {
        float p = scores[trueClass];
        int rank = 0;
        for (int i = 0; i < scores.Length; i++)
        {
            if (scores[i] > p || (scores[i] == p && i < trueClass))
                rank++;
        }
        return rank;
    }

    /// <summary>Class names from the Score column's text "SlotNames" annotation, else "0", "1", ...</summary>
    private static ReadOnlyMemory<char>[] ClassNames(DataViewSchema.Column score, int n)
    {
        var slotNames = score.Annotations.Schema.GetColumnOrNull(AnnotationKinds.SlotNames);
        if (slotNames?.Type is VectorDataViewType { ItemType: TextDataViewType } type && type.Size == n)
        {
            VBuffer<ReadOnlyMemory<char>> names = default;
            score.Annotations.GetValue(AnnotationKinds.SlotNames, ref names);
            return names.DenseValues().ToArray();
        }
        return Enumerable.Range(0, n).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture).AsMemory()).ToArray();
    }
}
