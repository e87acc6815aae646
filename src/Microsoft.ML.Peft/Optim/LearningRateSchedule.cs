namespace Microsoft.ML.Peft.Optim;

/// <summary>A multiplier on the base learning rate as a function of the step (the lambda of torch's LambdaLR).</summary>
public abstract class LearningRateSchedule
{
    /// <summary>The factor at <paramref name="step"/> (0 before the first optimizer step).</summary>
    public abstract double Factor(int step);

    /// <summary>
    /// Warm-up steps for a warm-up ratio of <paramref name="totalSteps"/>: ⌈ratio·total⌉, as Hugging Face's
    /// <c>TrainingArguments.get_warmup_steps</c> (shared by the classification and causal-LM trainers).
    /// </summary>
    public static int WarmupSteps(double warmupRatio, int totalSteps) => (int)Math.Ceiling(warmupRatio * totalSteps);
}

/// <summary>Hugging Face get_linear_schedule_with_warmup: 0 → 1 linearly over the warm-up, then linearly down to 0 at the end.</summary>
public sealed class LinearWarmupSchedule(int warmupSteps, int totalSteps) : LearningRateSchedule
{
    /// <inheritdoc/>
    public override double Factor(int step) => step < warmupSteps
        ? (double)step / Math.Max(1, warmupSteps)
        : Math.Max(0.0, (double)(totalSteps - step) / Math.Max(1, totalSteps - warmupSteps));
}

/// <summary>Hugging Face get_cosine_schedule_with_warmup: linear warm-up, then a cosine from 1 to 0 (0.5 cycles by default).</summary>
public sealed class CosineWarmupSchedule(int warmupSteps, int totalSteps, double cycles = 0.5) : LearningRateSchedule
{
    /// <inheritdoc/>
    public override double Factor(int step)
    {
        if (step < warmupSteps) return (double)step / Math.Max(1, warmupSteps);
        double progress = (double)(step - warmupSteps) / Math.Max(1, totalSteps - warmupSteps);
        return Math.Max(0.0, 0.5 * (1.0 + Math.Cos(Math.PI * cycles * 2.0 * progress)));
    }
}

/// <summary>Hugging Face get_constant_schedule_with_warmup: linear warm-up, then constant.</summary>
public sealed class ConstantWarmupSchedule(int warmupSteps) : LearningRateSchedule
{
    /// <inheritdoc/>
    public override double Factor(int step) => step < warmupSteps ? (double)step / Math.Max(1, warmupSteps) : 1.0;
}

/// <summary>
/// Drives an optimizer's learning rate like torch's LambdaLR: construction sets lr = base·Factor(0); each
/// <see cref="Step"/> (after optimizer.Step()) advances the step and sets lr = base·Factor(step).
/// </summary>
public sealed class LearningRateScheduler
{
    private readonly Optimizer optimizer;
    private readonly LearningRateSchedule schedule;

    /// <summary>Takes the optimizer's current learning rate as the base rate.</summary>
    public LearningRateScheduler(Optimizer optimizer, LearningRateSchedule schedule)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        ArgumentNullException.ThrowIfNull(schedule);
        this.optimizer = optimizer;
        this.schedule = schedule;
        BaseLearningRate = optimizer.LearningRate;
        optimizer.LearningRate = BaseLearningRate * schedule.Factor(0);
    }

    /// <summary>The rate the factors multiply.</summary>
    public double BaseLearningRate { get; }

    /// <summary>Number of <see cref="Step"/> calls so far.</summary>
    public int CurrentStep { get; private set; }

    /// <summary>Advances one step and updates the optimizer's learning rate.</summary>
    public void Step()
    {
        CurrentStep++;
        optimizer.LearningRate = BaseLearningRate * schedule.Factor(CurrentStep);
    }
}
