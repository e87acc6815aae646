using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.AdapterArithmetic;

/// <summary>How TIES elects the sign each merged element keeps (PEFT's <c>majority_sign_method</c>).</summary>
public enum MajoritySignMethod
{
    /// <summary>The sign of the sum of the (pruned, unweighted) values ("total", PEFT's default).</summary>
    Total,

    /// <summary>The sign held by more of the tensors ("frequency").</summary>
    Frequency,
}

/// <summary>
/// Merging several "task tensors" (adapter matrices or weight deltas of the same shape) into one, as PEFT's
/// <c>merge_utils</c>: task arithmetic (Ilharco et al. 2023), TIES (Yadav et al. 2023: trim, elect sign, disjoint
/// merge), DARE (Yu et al. 2024: drop at random and rescale) and magnitude pruning. Plain float arrays, row-major.
/// </summary>
public static class TaskArithmetic
{
    /// <summary>Σᵢ wᵢ·tᵢ.</summary>
    public static float[] WeightedSum(IReadOnlyList<float[]> tensors, IReadOnlyList<double> weights)
    {
        int n = CheckShapes(tensors, weights);
        var result = new float[n];
        for (int t = 0; t < tensors.Count; t++)
        {
            float w = (float)weights[t];
            var x = tensors[t];
            for (int i = 0; i < n; i++) result[i] += w * x[i];
        }
        return result;
    }

    /// <summary>
    /// Keeps the k = ⌊density·n⌋ largest-magnitude values and zeroes the rest (ties at the threshold are broken
    /// by position, first kept). density ≥ 1 keeps everything.
    /// </summary>
    public static float[] MagnitudePrune(ReadOnlySpan<float> tensor, double density)
    {
        CheckDensity(density);
        var result = tensor.ToArray();
        if (density >= 1) return result;
        int k = (int)(density * tensor.Length);
        var order = new int[tensor.Length];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var magnitudes = result.Select(MathF.Abs).ToArray();
        Array.Sort(order, (a, b) => magnitudes[b].CompareTo(magnitudes[a]) is var c && c != 0 ? c : a.CompareTo(b));
        for (int i = k; i < order.Length; i++) result[order[i]] = 0;
        return result;
    }

    /// <summary>
    /// Keeps each value with probability density (Bernoulli mask from <paramref name="generator"/>) and, with
    /// <paramref name="rescale"/>, divides the kept ones by density so the expectation is unchanged (DARE).
    /// </summary>
    public static float[] RandomPrune(ReadOnlySpan<float> tensor, double density, bool rescale, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        CheckDensity(density);
        var result = tensor.ToArray();
        if (density >= 1) return result;
        var uniform = new float[tensor.Length];
        generator.FillUniform(uniform);
        for (int i = 0; i < result.Length; i++)
        {
            result[i] = uniform[i] < density ? (rescale ? (float)(result[i] / density) : result[i]) : 0f;
        }
        return result;
    }

    /// <summary>
    /// TIES: magnitude-prune each tensor to <paramref name="density"/>, elect each element's sign from the pruned
    /// (unweighted) tensors, then average the weighted values that agree with it:
    /// Σᵢ wᵢtᵢ[sign(tᵢ) = s] / max(1, #{i : sign(tᵢ) = s}).
    /// </summary>
    public static float[] Ties(IReadOnlyList<float[]> tensors, IReadOnlyList<double> weights, double density, MajoritySignMethod method) =>
        DisjointMerge([.. tensors.Select(t => MagnitudePrune(t, density))], weights, method);

    /// <summary>DARE then task arithmetic: random-prune with rescaling, then Σᵢ wᵢtᵢ.</summary>
    public static float[] DareLinear(IReadOnlyList<float[]> tensors, IReadOnlyList<double> weights, double density, Generator generator) =>
        WeightedSum([.. tensors.Select(t => RandomPrune(t, density, rescale: true, generator))], weights);

    /// <summary>DARE then TIES' sign election and disjoint merge.</summary>
    public static float[] DareTies(IReadOnlyList<float[]> tensors, IReadOnlyList<double> weights, double density, MajoritySignMethod method, Generator generator) =>
        DisjointMerge([.. tensors.Select(t => RandomPrune(t, density, rescale: true, generator))], weights, method);

    /// <summary>Magnitude-prune each tensor, then Σᵢ wᵢtᵢ.</summary>
    public static float[] MagnitudePruneSum(IReadOnlyList<float[]> tensors, IReadOnlyList<double> weights, double density) =>
        WeightedSum([.. tensors.Select(t => MagnitudePrune(t, density))], weights);

    private static float[] DisjointMerge(IReadOnlyList<float[]> pruned, IReadOnlyList<double> weights, MajoritySignMethod method)
    {
        int n = CheckShapes(pruned, weights);
        var result = new float[n];
        for (int i = 0; i < n; i++)
        {
            float vote = 0;
            foreach (var t in pruned) vote += method == MajoritySignMethod.Total ? t[i] : MathF.Sign(t[i]);
            int majority = vote >= 0 ? 1 : -1;
            float sum = 0;
            int kept = 0;
            for (int k = 0; k < pruned.Count; k++)
            {
                if (MathF.Sign(pruned[k][i]) != majority) continue;   // zeros never agree
                sum += (float)weights[k] * pruned[k][i];
                kept++;
            }
            result[i] = sum / Math.Max(kept, 1);
        }
        return result;
    }

    private static int CheckShapes(IReadOnlyList<float[]> tensors, IReadOnlyList<double> weights)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        ArgumentNullException.ThrowIfNull(weights);
        if (tensors.Count == 0) throw new ArgumentException("at least one tensor is needed", nameof(tensors));
        if (weights.Count != tensors.Count) throw new ArgumentException($"{tensors.Count} tensors but {weights.Count} weights", nameof(weights));
        int n = tensors[0].Length;
        for (int i = 1; i < tensors.Count; i++)
        {
            if (tensors[i].Length != n) throw new ArgumentException($"tensor {i} has {tensors[i].Length} values, tensor 0 has {n}", nameof(tensors));
        }
        return n;
    }

    private static void CheckDensity(double density)
    {
        if (!(density >= 0)) throw new ArgumentOutOfRangeException(nameof(density), density, "density must be in [0, 1] (1 keeps everything)");
    }
}
