using System.Globalization;
using System.Text;

namespace Microsoft.ML.Data;

/// <summary>
/// The confusion matrix of a classification evaluation: <see cref="Counts"/>[actual][predicted], with per-class
/// precision (diagonal / column sum) and recall (diagonal / row sum), 0 when the sum is 0.
/// </summary>
public sealed class ConfusionMatrix
{
    private string? _formatted;

    internal ConfusionMatrix(double[][] counts, IReadOnlyList<ReadOnlyMemory<char>> classNames, bool isSampled, bool isBinary)
    {
        int n = counts.Length;
        if (n == 0 || classNames.Count != n || counts.Any(row => row.Length != n))
            throw new ArgumentException("A confusion matrix needs a square table with one name per class.", nameof(counts));
        NumberOfClasses = n;
        Counts = counts.Select(row => (IReadOnlyList<double>)row.ToList().AsReadOnly()).ToList().AsReadOnly();
        PredictedClassesIndicators = classNames;
        IsSampled = isSampled;
        IsBinary = isBinary;
        var precision = new double[n];
        var recall = new double[n];
        for (int i = 0; i < n; i++)
        {
            double rowSum = 0, columnSum = 0;
            for (int j = 0; j < n; j++)
            {
                rowSum += counts[i][j];
                columnSum += counts[j][i];
            }
            recall[i] = rowSum > 0 ? counts[i][i] / rowSum : 0;
            precision[i] = columnSum > 0 ? counts[i][i] / columnSum : 0;
        }
        PerClassPrecision = precision.ToList().AsReadOnly();
        PerClassRecall = recall.ToList().AsReadOnly();
    }

    /// <summary>Per class: correctly predicted / all predicted as that class.</summary>
    public IReadOnlyList<double> PerClassPrecision { get; }

    /// <summary>Per class: correctly predicted / all of that class.</summary>
    public IReadOnlyList<double> PerClassRecall { get; }

    /// <summary>Counts[actual][predicted].</summary>
    public IReadOnlyList<IReadOnlyList<double>> Counts { get; }

    /// <summary>The number of classes.</summary>
    public int NumberOfClasses { get; }

    internal IReadOnlyList<ReadOnlyMemory<char>> PredictedClassesIndicators { get; }

    internal bool IsSampled { get; }

    internal bool IsBinary { get; }

    /// <summary>The count of examples of class <paramref name="actualClassIndicatorIndex"/> predicted as <paramref name="predictedClassIndicatorIndex"/>.</summary>
    public double GetCountForClassPair(int predictedClassIndicatorIndex, int actualClassIndicatorIndex)
    {
        if (predictedClassIndicatorIndex < 0 || predictedClassIndicatorIndex >= NumberOfClasses)
            throw new ArgumentOutOfRangeException(nameof(predictedClassIndicatorIndex), "Invalid index. Should be non-negative, less than the number of classes.");
        if (actualClassIndicatorIndex < 0 || actualClassIndicatorIndex >= NumberOfClasses)
            throw new ArgumentOutOfRangeException(nameof(actualClassIndicatorIndex), "Invalid index. Should be non-negative, less than the number of classes.");
        return Counts[actualClassIndicatorIndex][predictedClassIndicatorIndex];
    }

    /// <summary>
    /// The table as ML.NET prints it: a "TEST POSITIVE RATIO" line for binary tables, then a PREDICTED/TRUTH grid with the
    /// recall of each row and the precision of each column. Long class names switch the header to class indices.
    /// </summary>
    public string GetFormattedConfusionTable() => _formatted ??= Format();

    private string Format()
    {
        var c = CultureInfo.InvariantCulture;
        int numLabels = NumberOfClasses;
        var names = PredictedClassesIndicators.Select(n => n.ToString()).ToArray();
        int colWidth = numLabels == 2 ? 8 : 5;
        int maxNameLen = names.Max(n => n.Length);
        bool useNumbersInHeader = maxNameLen > colWidth;
        int rowLabelLen = maxNameLen;
        int rowDigitLen = 0;
        if (useNumbersInHeader)
        {
            rowDigitLen = Math.Max(numLabels - 1, 0).ToString(c).Length;
            rowLabelLen += rowDigitLen + 2;
        }
        int paddingLen = Math.Max(9, rowLabelLen);
        string pad = new(' ', paddingLen - 9);
        string rowLabelFormat = useNumbersInHeader
            ? "{0," + rowDigitLen + "}. {1," + (paddingLen - (rowDigitLen + 2)) + "} ||"
            : "{1," + paddingLen + "} ||";
        string rule = numLabels > 2 ? "========" : "===========";

        var sb = new StringBuilder();
        if (numLabels == 2 && IsBinary)
        {
            double truePositive = Counts[0][0], falseNegative = Counts[0][1], trueNegative = Counts[1][1], falsePositive = Counts[1][0];
            sb.AppendFormat(c, "TEST {0} RATIO:\t{1:N4} ({2:F1}/({2:F1}+{3:F1}))", names[0].ToUpperInvariant(),
                1.0 * (truePositive + falseNegative) / (truePositive + trueNegative + falseNegative + falsePositive),
                truePositive + falseNegative, falsePositive + trueNegative);
        }
        sb.AppendLine();
        sb.Append("Confusion table");
        sb.AppendLine(IsSampled ? " (sampled)" : "");
        sb.Append(c, $"          {pad}||");
        for (int i = 0; i < numLabels; i++)
            sb.Append(rule);
        sb.AppendLine();
        sb.Append(c, $"PREDICTED {pad}||");
        string header = " {" + (useNumbersInHeader ? 0 : 1) + "," + colWidth + "} |";
        for (int i = 0; i < numLabels; i++)
            sb.AppendFormat(c, header, i, names[i]);
        sb.AppendLine(" Recall");
        sb.Append(c, $"TRUTH     {pad}||");
        for (int i = 0; i < numLabels; i++)
            sb.Append(rule);
        sb.AppendLine();
        string cell = " {0," + colWidth + ":N0} |";
        for (int i = 0; i < numLabels; i++)
        {
            sb.AppendFormat(c, rowLabelFormat, i, names[i]);
            for (int j = 0; j < numLabels; j++)
                sb.AppendFormat(c, cell, Counts[i][j]);
            sb.AppendFormat(c, " {0,5:F4}", PerClassRecall[i]);
            sb.AppendLine();
        }
        sb.Append(c, $"          {pad}||");
        for (int i = 0; i < numLabels; i++)
            sb.Append(rule);
        sb.AppendLine();
        sb.Append(c, $"Precision {pad}||");
        string precisionCell = "{0," + (colWidth + 1) + ":N4} |";
        for (int i = 0; i < numLabels; i++)
            sb.AppendFormat(c, precisionCell, PerClassPrecision[i]);
        sb.AppendLine();
        return sb.ToString();
    }
}
