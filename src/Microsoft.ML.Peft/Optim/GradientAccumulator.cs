using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Optim;

/// <summary>
/// Gradient accumulation over <c>microBatches</c> backward passes per optimizer step, as Hugging Face's Trainer:
/// <code>
/// var acc = new GradientAccumulator(optimizer, microBatches: 4, scheduler, maxGradNorm: 1.0);
/// foreach (var batch in batches)
/// {
///     using var scope = TensorScope.Begin();
///     acc.Scale(model.Loss(batch)).Backward();   // loss / 4: the step sees the mean over micro-batches
///     acc.MicroStepDone();                       // every 4th call: clip, step, schedule, zero grad
/// }
/// </code>
/// </summary>
public sealed class GradientAccumulator
{
    private readonly Optimizer optimizer;
    private readonly LearningRateScheduler? scheduler;
    private readonly double? maxGradNorm;
    private int pending;

    /// <summary>Accumulates <paramref name="microBatches"/> backward passes per optimizer step.</summary>
    public GradientAccumulator(Optimizer optimizer, int microBatches, LearningRateScheduler? scheduler = null, double? maxGradNorm = null)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(microBatches);
        this.optimizer = optimizer;
        MicroBatches = microBatches;
        this.scheduler = scheduler;
        this.maxGradNorm = maxGradNorm;
    }

    /// <summary>Backward passes per optimizer step.</summary>
    public int MicroBatches { get; }

    /// <summary>The gradient norm measured at the last optimizer step (before clipping), when clipping is on.</summary>
    public double? LastGradNorm { get; private set; }

    /// <summary>The loss divided by the number of micro-batches (call Backward on this).</summary>
    public Tensor Scale(Tensor loss)
    {
        ArgumentNullException.ThrowIfNull(loss);
        return MicroBatches == 1 ? loss : loss.Div(MicroBatches);
    }

    /// <summary>Records one finished backward pass; on the last of a group clips, steps, schedules and clears gradients.</summary>
    /// <returns>Whether the optimizer stepped.</returns>
    public bool MicroStepDone()
    {
        if (++pending < MicroBatches) return false;
        pending = 0;
        if (maxGradNorm is { } max) LastGradNorm = GradientClipping.ClipGradNorm(optimizer.Parameters, max);
        optimizer.Step();
        scheduler?.Step();
        optimizer.ZeroGrad();
        return true;
    }
}
