using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>Magnitude pruning of one weight matrix to a target sparsity (sparse adapters).</summary>
internal static class MagnitudePruning
{
    /// <summary>
    /// A 0/1 mask of <paramref name="weight"/>'s shape keeping the n − ⌊sparsity·n⌋ entries of largest |w|, and zeroes
    /// the pruned entries of <paramref name="weight"/> in place. Ties (all of a zero-initialised up-projection) are
    /// broken by a random draw from <paramref name="generator"/>, so pruning a zero matrix is random pruning.
    /// </summary>
    public static Tensor Prune(Tensor weight, double sparsity, Generator generator)
    {
        int n = weight.Count;
        int pruned = (int)Math.Floor(sparsity * n);
        Tensor mask;
        using (TensorScope.Untracked())
        using (Autograd.NoGrad())
        {
            var tieBreak = Tensor.Rand(generator, n).ToArray();
            mask = Tensor.Ones(weight.ShapeArray());
            var w = weight.AsSpan<float>();
            var order = Enumerable.Range(0, n).ToArray();
            // Ascending |w|, ties by the random key: the first `pruned` entries go.
            var keys = new (float Magnitude, float Tie)[n];
            for (int i = 0; i < n; i++) keys[i] = (Math.Abs(w[i]), tieBreak[i]);
            Array.Sort(keys, order);
            var m = mask.AsSpan<float>();
            for (int i = 0; i < pruned; i++)
            {
                m[order[i]] = 0f;
                w[order[i]] = 0f;
            }
        }
        return mask;
    }
}
