using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdapterTraining;

/// <summary>
/// What a PEFT method needs from the training loop beyond "minimise the task loss over the trainable parameters":
/// optimizer parameter groups (LoRA+), an extra loss term (AdaLoRA's orthogonality regulariser) and a callback after
/// each optimizer step (AdaLoRA's rank allocator). Obtain one with <see cref="AdapterTrainingHooks.Create"/>.
/// </summary>
/// <remarks>
/// A trainer calls, per optimizer step:
/// <code>
/// var hooks = AdapterTrainingHooks.Create(peft, totalSteps, loraPlusLrRatio);   // once, before training
/// var optimizer = new AdamW(hooks.ParameterGroups(peft), lr, ...);               // once
/// loss = taskLoss; if (hooks.ExtraLoss(peft) is { } extra) loss = loss.Add(extra);
/// loss.Backward(); optimizer.Step();
/// hooks.AfterOptimizerStep(peft, stepIndex);                                       // before ZeroGrad: it reads gradients
/// optimizer.ZeroGrad();
/// </code>
/// With gradient accumulation, add <see cref="ExtraLoss"/> once per optimizer step with weight 1 (it depends on the
/// adapter weights only); PEFT adds it to every forward's loss and the trainer divides each by the group size, which
/// gives the same gradient at k times the cost.
/// </remarks>
public interface IAdapterTrainingHooks
{
    /// <summary>The optimizer's parameter groups, covering exactly the trainable parameters of <paramref name="model"/>.</summary>
    IReadOnlyList<ParameterGroup> ParameterGroups(PeftModel model);

    /// <summary>A term to add to the task loss before backward (recorded for autograd), or null for none.</summary>
    Tensor? ExtraLoss(PeftModel model);

    /// <summary>
    /// Called after optimizer.Step() and before ZeroGrad() with the 0-based index of the step just taken (PEFT's
    /// <c>global_step</c> in its AdaLoRA examples). May read gradients and change adapter weights in place.
    /// </summary>
    void AfterOptimizerStep(PeftModel model, int stepIndex);
}

/// <summary>Implemented by configurations whose method needs training-time hooks (AdaLoRA).</summary>
public interface IProvidesTrainingHooks
{
    /// <summary>Hooks for adapter <paramref name="adapterName"/> of <paramref name="model"/>, trained for <paramref name="totalSteps"/> optimizer steps.</summary>
    IAdapterTrainingHooks CreateTrainingHooks(PeftModel model, string adapterName, int totalSteps);
}
