namespace Microsoft.ML.Peft.AutoML;

/// <summary>Spearman's rank correlation, to check whether a sweep's evidence ranks configurations like a validation metric.</summary>
public static class RankCorrelation
{
    /// <summary>
    /// Spearman's ρ: the Pearson correlation of the two samples' ranks, tied values sharing their mean rank (the
    /// definition scipy.stats.spearmanr uses). NaN when either sample is constant (no ranking to compare).
    /// </summary>
    /// <exception cref="ArgumentException">Lengths differ, fewer than two pairs, or a value is NaN.</exception>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(y);
        if (x.Count != y.Count) throw new ArgumentException($"Spearman: the samples have {x.Count} and {y.Count} values; they must pair up", nameof(y));
        if (x.Count < 2) throw new ArgumentException($"Spearman: {x.Count} pairs; at least 2 are needed", nameof(x));
        var rx = AverageRanks(x);
        var ry = AverageRanks(y);
        double mean = (x.Count + 1) / 2.0, sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < rx.Length; i++)
        {
            double dx = rx[i] - mean, dy = ry[i] - mean;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        return sxx == 0 || syy == 0 ? double.NaN : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>1-based ranks in ascending order; a run of equal values gets the mean of the ranks it spans.</summary>
    /// <exception cref="ArgumentException">A value is NaN.</exception>
    public static double[] AverageRanks(IReadOnlyList<double> values)
    {
        ArgumentNullException.ThrowIfNull(values);
        for (int i = 0; i < values.Count; i++)
        {
            if (double.IsNaN(values[i])) throw new ArgumentException($"Spearman: value {i} is NaN", nameof(values));
        }
        var order = new int[values.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) => values[a].CompareTo(values[b]));
        var ranks = new double[values.Count];
        for (int start = 0; start < order.Length;)
        {
            int end = start + 1;
            while (end < order.Length && values[order[end]] == values[order[start]]) end++;
            double rank = (start + 1 + end) / 2.0;   // mean of the 1-based ranks start+1 .. end
            for (int k = start; k < end; k++) ranks[order[k]] = rank;
            start = end;
        }
        return ranks;
    }
}
