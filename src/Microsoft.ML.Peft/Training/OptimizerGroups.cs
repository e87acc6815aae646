using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Training;

/// <summary>
/// The AdamW parameter groups of <see cref="TrainingLoop"/>: the method's groups (learning-rate scale and weight decay,
/// e.g. LoRA+), each split by the loop's own rule "decay on matrices only" (rank &lt; 2 — biases, norm scales — never
/// decays).
/// </summary>
internal static class OptimizerGroups
{
    /// <summary>
    /// Groups over exactly <paramref name="trainable"/>, in its order within each group, so that a method without
    /// groups of its own (one group) gets [matrices, vectors with decay 0]: the loop's groups before hooks existed,
    /// hence bit-identical training (the clipping norm sums in this order too).
    /// </summary>
    /// <exception cref="InvalidOperationException">The method's groups do not cover exactly the trainable parameters.</exception>
    public static IReadOnlyList<ParameterGroup> Build(IReadOnlyList<(string Name, Tensor Parameter)> trainable, IReadOnlyList<ParameterGroup>? methodGroups)
    {
        ArgumentNullException.ThrowIfNull(trainable);
        methodGroups ??= [new ParameterGroup(trainable.Select(p => p.Parameter))];
        var groupOf = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int g = 0; g < methodGroups.Count; g++)
        {
            foreach (var p in methodGroups[g].Parameters)
            {
                if (!groupOf.TryAdd(p, g))
                    throw new InvalidOperationException($"the method's optimizer groups list parameter {p} twice");
            }
        }
        // Bucket 2g holds group g's matrices, 2g + 1 its vectors.
        var buckets = new List<Tensor>[2 * methodGroups.Count];
        for (int i = 0; i < buckets.Length; i++) buckets[i] = [];
        foreach (var (name, p) in trainable)
        {
            if (!groupOf.Remove(p, out int g))
                throw new InvalidOperationException($"the method's optimizer groups leave out the trainable parameter '{name}' {p}");
            buckets[2 * g + (p.Rank >= 2 ? 0 : 1)].Add(p);
        }
        if (groupOf.Count > 0)
            throw new InvalidOperationException($"the method's optimizer groups hold {groupOf.Count} parameter(s) that are not trainable in the model, e.g. {groupOf.Keys.First()}");

        var groups = new List<ParameterGroup>(buckets.Length);
        for (int g = 0; g < methodGroups.Count; g++)
        {
            var group = methodGroups[g];
            groups.Add(new ParameterGroup(buckets[2 * g], group.WeightDecay, group.LearningRateScale));
            groups.Add(new ParameterGroup(buckets[2 * g + 1], weightDecay: 0, group.LearningRateScale));
        }
        return groups;
    }
}
