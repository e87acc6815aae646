using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// ML.NET's binary evaluator. Rows with a non-finite score or a missing label are skipped. A row is positive when its
/// label is &gt; 0 (key 2, true) and predicted positive when its raw score is &gt; 0. Log-losses use base-2 logarithms.
/// </summary>
internal static class BinaryEvaluator
{
    private static readonly ReadOnlyMemory<char>[] ClassNames = { "positive".AsMemory(), "negative".AsMemory() };

    public static CalibratedBinaryClassificationMetrics EvaluateCalibrated(IDataView data, string labelColumnName, string scoreColumnName,
        string probabilityColumnName, string predictedLabelColumnName)
    {
        var probability = SchemaErrors.Find(data.Schema, "probability", probabilityColumnName);
        if (probability.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(probabilityColumnName),
                $"Probability column '{probability.Name}' has type '{probability.Type}' but must be Single");
        var rows = Collect(data, labelColumnName, scoreColumnName, predictedLabelColumnName, probability);
        var basic = Metrics(rows);
        double logLossSum = 0, positives = 0, negatives = 0, truePos = 0, all = 0;
        foreach (var row in rows)
        {
            all++;
            if (row.Positive)
                truePos++;
            if (float.IsNaN(row.Probability))
                continue;
            logLossSum += row.Positive ? -Math.Log(row.Probability, 2) : -Math.Log(1.0 - row.Probability, 2);
            if (row.Positive)
                positives++;
            else
                negatives++;
        }
        double count = positives + negatives;
        double logLoss = count > 0 ? logLossSum / count : 0;
        double reduction = 0;
        if (count > 0)
        {
            double prior = BinaryEntropy(positives / count);
            reduction = (prior - logLoss) / prior;
        }
        double entropy = BinaryEntropy(truePos / all);
        return new CalibratedBinaryClassificationMetrics(basic, logLoss, reduction, entropy);
    }

    public static BinaryClassificationMetrics EvaluateNonCalibrated(IDataView data, string labelColumnName, string scoreColumnName,
        string predictedLabelColumnName)
        => Metrics(Collect(data, labelColumnName, scoreColumnName, predictedLabelColumnName, null));

    /// <summary>−p log2 p − (1−p) log2(1−p), 0 at p ∈ {0, 1}, NaN outside [0, 1].</summary>
    internal static double BinaryEntropy(double p)
    {
        if (!(p >= 0 && p <= 1))
            return double.NaN;
        if (p == 0 || p == 1)
            return 0;
        return -(p * Math.Log(p, 2) + (1 - p) * Math.Log(1 - p, 2));
    }

    internal readonly record struct Row(float Score, bool Positive, float Probability);

    private static List<Row> Collect(IDataView data, string labelColumnName, string scoreColumnName, string predictedLabelColumnName,
        DataViewSchema.Column? probability)
    {
        ArgumentNullException.ThrowIfNull(data);
        var label = SchemaErrors.Find(data.Schema, "label", labelColumnName);
        var score = SchemaErrors.Find(data.Schema, "score", scoreColumnName);
        SchemaErrors.Find(data.Schema, "predicted label", predictedLabelColumnName);
        if (!LabelReader.IsSupported(label.Type, allowBoolean: true) || (label.Type is KeyDataViewType key && key.Count != 2))
            throw new ArgumentOutOfRangeException(nameof(labelColumnName),
                $"Label column '{label.Name}' has type '{label.Type}' but must be Single, Double, Boolean or a key of count 2");
        if (score.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(scoreColumnName), $"Score column '{score.Name}' has type '{score.Type}' but must be Single");
        var columns = new List<DataViewSchema.Column> { label, score };
        if (probability != null)
            columns.Add(probability.Value);
        var rows = new List<Row>();
        using var cursor = data.GetRowCursor(columns);
        var readLabel = LabelReader.Create(cursor, label);
        var scoreGetter = cursor.GetGetter<float>(score);
        var probabilityGetter = probability != null ? cursor.GetGetter<float>(probability.Value) : null;
        float s = 0, p = float.NaN;
        while (cursor.MoveNext())
        {
            float l = readLabel();
            scoreGetter(ref s);
            if (!float.IsFinite(s) || float.IsNaN(l))
                continue;
            probabilityGetter?.Invoke(ref p);
            rows.Add(new Row(s, l > 0, p));
        }
        return rows;
    }

    private static BinaryClassificationMetrics Metrics(List<Row> rows)
    {
        double tp = 0, tn = 0, fp = 0, fn = 0;
        foreach (var row in rows)
        {
            bool predictedPositive = row.Score > 0;
            if (row.Positive)
            {
                if (predictedPositive) tp++;
                else fn++;
            }
            else if (predictedPositive)
                fp++;
            else
                tn++;
        }
        double accuracy = (tp + tn) / (tp + tn + fp + fn);
        double positivePrecision = tp + fp > 0 ? tp / (tp + fp) : 0;
        double positiveRecall = tp + fn > 0 ? tp / (tp + fn) : 0;
        double negativePrecision = tn + fn > 0 ? tn / (tn + fn) : 0;
        double negativeRecall = tn + fp > 0 ? tn / (tn + fp) : 0;
        double f1 = 2 * positivePrecision * positiveRecall / (positivePrecision + positiveRecall);
        var confusion = new ConfusionMatrix(new[] { new[] { tp, fn }, new[] { fp, tn } }, ClassNames, isSampled: false, isBinary: true);
        return new BinaryClassificationMetrics(RocArea(rows), accuracy, positivePrecision, positiveRecall, negativePrecision, negativeRecall,
            f1, PrecisionRecallArea(rows), confusion);
    }

    /// <summary>
    /// The Mann-Whitney form of the ROC area: the fraction of (positive, negative) pairs ordered correctly, ties counting
    /// one half. Sorting both score lists makes it O(n log n): for each negative, count the positives above it and tied with it.
    /// </summary>
    internal static double RocArea(List<Row> rows)
    {
        var positives = rows.Where(r => r.Positive).Select(r => r.Score).OrderByDescending(s => s).ToArray();
        var negatives = rows.Where(r => !r.Positive).Select(r => r.Score).OrderByDescending(s => s).ToArray();
        double pairs = 0;
        int above = 0;
        foreach (float negative in negatives)
        {
            while (above < positives.Length && positives[above] > negative)
                above++;
            int tied = above;
            while (tied < positives.Length && positives[tied] == negative)
                tied++;
            pairs += above + 0.5 * (tied - above);
        }
        return pairs / ((double)positives.Length * negatives.Length);
    }

    /// <summary>
    /// The "lower trapezoid" estimator of the area under the precision-recall curve (Boyd et al., ECML 2013), as ML.NET
    /// computes it: rows in descending score order (ties keep input order); each positive adds
    /// Δrecall × (previous minimum precision + current precision) / 2.
    /// </summary>
    internal static double PrecisionRecallArea(List<Row> rows)
    {
        int positiveCount = rows.Count(r => r.Positive);
        var sorted = Enumerable.Range(0, rows.Count).OrderByDescending(i => rows[i].Score);
        double previousRecall = 0, previousPrecisionMin = 1, area = 0;
        int truePositives = 0, falsePositives = 0;
        foreach (int i in sorted)
        {
            if (rows[i].Positive)
            {
                truePositives++;
                double recall = (double)truePositives / positiveCount;
                double precision = (double)truePositives / (truePositives + falsePositives);
                area += (recall - previousRecall) * (previousPrecisionMin + precision) / 2;
                previousPrecisionMin = precision;
                previousRecall = recall;
            }
            else
            {
                falsePositives++;
                previousPrecisionMin = (double)truePositives / (truePositives + falsePositives);
            }
        }
        return area;
    }
}
