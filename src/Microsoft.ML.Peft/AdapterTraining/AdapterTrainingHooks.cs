using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdapterTraining;

/// <summary>The hooks a trainer uses for any <see cref="PeftModel"/>: the active adapter's own, plus LoRA+ groups on request.</summary>
public static class AdapterTrainingHooks
{
    /// <summary>
    /// Hooks for training the active adapter of <paramref name="model"/> for <paramref name="totalSteps"/> optimizer
    /// steps: the method's own (<see cref="IProvidesTrainingHooks"/>, e.g. AdaLoRA) or none, and LoRA+ parameter
    /// groups when <paramref name="loraPlusLrRatio"/> is given (otherwise one group with the optimizer's settings).
    /// With both, each parameter's group is the intersection of its method group and its LoRA+ group
    /// (<see cref="Compose"/>), so neither set of settings is lost.
    /// </summary>
    public static IAdapterTrainingHooks Create(PeftModel model, int totalSteps, double? loraPlusLrRatio = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(totalSteps);
        var inner = model.ActiveConfig is IProvidesTrainingHooks provider
            ? provider.CreateTrainingHooks(model, model.ActiveAdapter, totalSteps)
            : null;
        return new Combined(inner, loraPlusLrRatio);
    }

    /// <summary>
    /// Splits every <paramref name="method"/> group by the <paramref name="loraPlus"/> group of each of its parameters:
    /// learning-rate scales multiply, and the method's weight-decay override wins over LoRA+'s (a method that fixes a
    /// decay means it). Order: method groups, then LoRA+ groups, each keeping its parameters' order; one plain method
    /// group therefore gives exactly the LoRA+ groups. A parameter LoRA+ does not group keeps the method's settings.
    /// </summary>
    internal static IReadOnlyList<ParameterGroup> Compose(IReadOnlyList<ParameterGroup> method, IReadOnlyList<ParameterGroup> loraPlus)
    {
        var loraPlusGroupOf = new Dictionary<Tensor, int>(ReferenceEqualityComparer.Instance);
        for (int g = 0; g < loraPlus.Count; g++)
        {
            foreach (var p in loraPlus[g].Parameters) loraPlusGroupOf[p] = g;
        }
        var result = new List<ParameterGroup>();
        foreach (var group in method)
        {
            for (int g = -1; g < loraPlus.Count; g++)
            {
                var members = group.Parameters.Where(p => (loraPlusGroupOf.TryGetValue(p, out int k) ? k : -1) == g).ToList();
                if (members.Count == 0) continue;
                result.Add(g < 0 ? new ParameterGroup(members, group.WeightDecay, group.LearningRateScale)
                    : new ParameterGroup(members, group.WeightDecay ?? loraPlus[g].WeightDecay, group.LearningRateScale * loraPlus[g].LearningRateScale));
            }
        }
        return result;
    }

    private sealed class Combined(IAdapterTrainingHooks? inner, double? loraPlusLrRatio) : IAdapterTrainingHooks
    {
        public IReadOnlyList<ParameterGroup> ParameterGroups(PeftModel model)
        {
            var own = inner?.ParameterGroups(model) ?? [new ParameterGroup(model.TrainableParameters().Select(p => p.Parameter))];
            return loraPlusLrRatio is { } ratio ? Compose(own, LoraPlus.CreateParameterGroups(model, ratio)) : own;
        }

        public Tensor? ExtraLoss(PeftModel model) => inner?.ExtraLoss(model);

        public void AfterOptimizerStep(PeftModel model, int stepIndex) => inner?.AfterOptimizerStep(model, stepIndex);
    }
}
