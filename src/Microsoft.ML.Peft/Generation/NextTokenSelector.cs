using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Generation;

/// <summary>
/// Picks the next token from one row of logits as transformers' logits processors and warpers do: repetition penalty,
/// then either argmax (greedy) or temperature → top-k → top-p → softmax → one draw from the engine's seeded generator.
/// Works in place on a scratch copy of the row; O(V log V) only when top-p needs the sorted order.
/// </summary>
internal static class NextTokenSelector
{
    public static int Select(Span<float> logits, GenerationOptions options, Generator generator, IReadOnlyCollection<int> seen, int[] order)
    {
        if (options.RepetitionPenalty != 1f)
        {
            foreach (int id in seen)
            {
                ref float l = ref logits[id];
                l = l < 0 ? l * options.RepetitionPenalty : l / options.RepetitionPenalty;
            }
        }
        if (!options.DoSample) return ArgMax(logits);

        if (options.Temperature != 1f)
        {
            float inverse = options.Temperature;
            for (int i = 0; i < logits.Length; i++) logits[i] /= inverse;
        }
        if (options.TopK > 0 && options.TopK < logits.Length) KeepTopK(logits, options.TopK, order);
        if (options.TopP < 1f) KeepTopP(logits, options.TopP, order);
        return Sample(logits, generator);
    }

    /// <summary>First index of the largest value (torch.argmax's tie rule).</summary>
    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best]) best = i;
        }
        return best;
    }

    /// <summary>TopKLogitsWarper: −∞ for every logit strictly below the k-th largest (ties with it survive).</summary>
    private static void KeepTopK(Span<float> logits, int k, int[] order)
    {
        SortDescending(logits, order);
        float kth = logits[order[k - 1]];
        for (int i = 0; i < logits.Length; i++)
        {
            if (logits[i] < kth) logits[i] = float.NegativeInfinity;
        }
    }

    /// <summary>
    /// TopPLogitsWarper: in ascending order, drop tokens while the cumulative probability stays ≤ 1 − top_p; the most
    /// likely token always survives.
    /// </summary>
    private static void KeepTopP(Span<float> logits, float topP, int[] order)
    {
        SortDescending(logits, order);
        float max = logits[order[0]];
        double total = 0;
        for (int i = 0; i < logits.Length; i++) total += Math.Exp(logits[i] - max);
        double cumulative = 0, threshold = 1 - (double)topP;
        for (int r = logits.Length - 1; r >= 1; r--)
        {
            int id = order[r];
            cumulative += Math.Exp(logits[id] - max) / total;
            if (cumulative > threshold) break;
            logits[id] = float.NegativeInfinity;
        }
    }

    /// <summary>One draw from softmax(logits).</summary>
    private static int Sample(ReadOnlySpan<float> logits, Generator generator)
    {
        float max = float.NegativeInfinity;
        foreach (float l in logits) max = MathF.Max(max, l);
        double total = 0;
        for (int i = 0; i < logits.Length; i++) total += Math.Exp(logits[i] - max);
        double target = generator.NextUniform() * total, cumulative = 0;
        int last = 0;
        for (int i = 0; i < logits.Length; i++)
        {
            if (float.IsNegativeInfinity(logits[i])) continue;
            cumulative += Math.Exp(logits[i] - max);
            last = i;
            if (cumulative > target) return i;
        }
        return last;
    }

    /// <summary>Indices by decreasing logit, ties by increasing index (a stable order, so results never depend on sort internals).</summary>
    private static void SortDescending(ReadOnlySpan<float> logits, int[] order)
    {
        for (int i = 0; i < order.Length; i++) order[i] = i;
        var keys = logits.ToArray();
        Array.Sort(order, (a, b) => keys[a] != keys[b] ? keys[b].CompareTo(keys[a]) : a.CompareTo(b));
    }
}
