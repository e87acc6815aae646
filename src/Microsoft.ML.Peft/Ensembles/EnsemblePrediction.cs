namespace Microsoft.ML.Peft.Ensembles;

/// <summary>
/// The predictive of an ensemble (SVGD particles, deep-ensemble members, MC-dropout samples or checkpoints) for a
/// batch: mean class probabilities and the usual uncertainty split (Depeweg et al. 2018) — total predictive entropy
/// H[p̄] = expected member entropy E[H[p_m]] (aleatoric) + mutual information (epistemic, the members' disagreement).
/// </summary>
public sealed class EnsemblePrediction
{
    private EnsemblePrediction(int rows, int classes, float[] probabilities, double[] entropy, double[] mutualInformation)
    {
        Rows = rows;
        Classes = classes;
        Probabilities = probabilities;
        PredictiveEntropy = entropy;
        MutualInformation = mutualInformation;
    }

    /// <summary>Batch rows.</summary>
    public int Rows { get; }

    /// <summary>Classes.</summary>
    public int Classes { get; }

    /// <summary>Mean probabilities, row-major [rows, classes].</summary>
    public float[] Probabilities { get; }

    /// <summary>Entropy of the mean probabilities per row (nats).</summary>
    public double[] PredictiveEntropy { get; }

    /// <summary>Predictive entropy minus the mean member entropy per row (nats, ≥ 0 up to rounding).</summary>
    public double[] MutualInformation { get; }

    /// <summary>Averages member probability arrays (each [rows, classes], row-major) and computes the uncertainty split.</summary>
    public static EnsemblePrediction FromMemberProbabilities(IReadOnlyList<float[]> members, int classes)
    {
        ArgumentNullException.ThrowIfNull(members);
        if (members.Count == 0) throw new ArgumentException("an ensemble needs at least one member", nameof(members));
        if (classes < 1 || members[0].Length % classes != 0) throw new ArgumentException($"member arrays of {members[0].Length} values do not hold rows of {classes} classes", nameof(classes));
        int length = members[0].Length, rows = length / classes;
        if (members.Any(m => m.Length != length)) throw new ArgumentException("every member must score the same rows", nameof(members));
        var mean = new float[length];
        var memberEntropy = new double[rows];
        foreach (var m in members)
        {
            for (int i = 0; i < length; i++) mean[i] += m[i] / members.Count;
            for (int r = 0; r < rows; r++) memberEntropy[r] += Entropy(m.AsSpan(r * classes, classes)) / members.Count;
        }
        var entropy = new double[rows];
        var information = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            entropy[r] = Entropy(mean.AsSpan(r * classes, classes));
            information[r] = entropy[r] - memberEntropy[r];
        }
        return new EnsemblePrediction(rows, classes, mean, entropy, information);
    }

    private static double Entropy(ReadOnlySpan<float> p)
    {
        double h = 0;
        foreach (float x in p)
        {
            if (x > 0) h -= x * Math.Log(x);
        }
        return h;
    }
}
