using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>ML.NET's regression evaluator (squared loss); rows with a NaN label or score are skipped.</summary>
internal static class RegressionEvaluator
{
    public static RegressionMetrics Evaluate(IDataView data, string labelColumnName, string scoreColumnName)
    {
        ArgumentNullException.ThrowIfNull(data);
        var label = SchemaErrors.Find(data.Schema, "label", labelColumnName);
        var score = SchemaErrors.Find(data.Schema, "score", scoreColumnName);
        if (label.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(labelColumnName), $"Label column '{label.Name}' has type '{label.Type}' but must be Single");
        if (score.Type != NumberDataViewType.Single)
            throw new ArgumentOutOfRangeException(nameof(scoreColumnName), $"Score column '{score.Name}' has type '{score.Type}' but must be Single");
        double n = 0, l1 = 0, l2 = 0, loss = 0, sumLabel = 0, sumLabelSquared = 0;
        using (var cursor = data.GetRowCursor(new[] { label, score }))
        {
            var labelGetter = cursor.GetGetter<float>(label);
            var scoreGetter = cursor.GetGetter<float>(score);
            float y = 0, s = 0;
            while (cursor.MoveNext())
            {
                labelGetter(ref y);
                scoreGetter(ref s);
                if (float.IsNaN(y) || float.IsNaN(s))
                    continue;
                double absolute = Math.Abs((double)y - s);
                float diff = s - y;
                n++;
                l1 += absolute;
                l2 += absolute * absolute;
                loss += diff * diff;
                sumLabel += y;
                sumLabelSquared += (double)y * y;
            }
        }
        if (n == 0)
            return new RegressionMetrics(0, 0, 0, 0, 0);
        double rSquared = 1 - l2 / (sumLabelSquared - sumLabel * sumLabel / n);
        return new RegressionMetrics(l1 / n, l2 / n, Math.Sqrt(l2 / n), loss / n, rSquared);
    }
}
