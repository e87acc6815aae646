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

    private sealed class Combined(IAdapterTrainingHooks? inner, double? loraPlusLrRatio) : IAdapterTrainingHooks
    {
        public IReadOnlyList<ParameterGroup> ParameterGroups(PeftModel model) =>
            loraPlusLrRatio is { } ratio ? LoraPlus.CreateParameterGroups(model, ratio)
            : inner?.ParameterGroups(model) ?? [new ParameterGroup(model.TrainableParameters().Select(p => p.Parameter))];

        public Tensor? ExtraLoss(PeftModel model) => inner?.ExtraLoss(model);

        public void AfterOptimizerStep(PeftModel model, int stepIndex) => inner?.AfterOptimizerStep(model, stepIndex);
    }
}
