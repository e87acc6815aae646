using System.Globalization;
using System.Text;
using Microsoft.ML.Peft.Optim;

namespace Microsoft.ML.Peft.Training;

/// <summary>Hyper-parameters of <see cref="TrainingLoop"/> (validated by <see cref="Validate"/> before any work).</summary>
internal sealed record TrainingSettings
{
    public int Epochs { get; init; } = 1;

    public int BatchSize { get; init; } = 32;

    public double LearningRate { get; init; } = 2e-4;

    /// <summary>Fraction of all optimizer steps spent in linear warm-up (rounded up), then linear decay to 0.</summary>
    public double WarmupRatio { get; init; } = 0.06;

    /// <summary>Decoupled weight decay, applied to trainable matrices only (rank ≥ 2: not to biases or norm scales).</summary>
    public double WeightDecay { get; init; } = 0.01;

    public int GradientAccumulationSteps { get; init; } = 1;

    /// <summary>Global gradient-norm clip, or null for none.</summary>
    public double? MaxGradNorm { get; init; } = 1.0;

    public ulong Seed { get; init; }

    /// <summary>Epochs without validation-loss improvement before stopping; 0 disables early stopping.</summary>
    public int EarlyStoppingPatience { get; init; }

    public BatchOrder BatchOrder { get; init; } = BatchOrder.Shuffled;

    /// <summary>Folder for resumable checkpoints, or null for none.</summary>
    public string? CheckpointFolder { get; init; }

    /// <summary>Checkpoint every this many optimizer steps (0: only at the end of each epoch).</summary>
    public int CheckpointEverySteps { get; init; }

    /// <summary>LoRA+ ratio λ (B matrices train at λ × the learning rate), or null for plain groups.</summary>
    public double? LoraPlusLearningRateRatio { get; init; }

    /// <summary>How AdamW keeps its moments: float32 (<see cref="AdamW"/>), or 8-bit / paged (<see cref="AdamW8Bit"/>).</summary>
    public AdamWStateStorage OptimizerState { get; init; } = AdamWStateStorage.Float32;

    /// <summary>GaLore for the trainable linear weights (the rest AdamW), or null for AdamW everywhere.</summary>
    public GaLore.GaLoreOptions? GaLore { get; init; }

    public void Validate()
    {
        static void Positive(int value, string name)
        {
            if (value <= 0) throw new ArgumentOutOfRangeException(name, value, $"{name} must be positive");
        }

        Positive(Epochs, nameof(Epochs));
        Positive(BatchSize, nameof(BatchSize));
        Positive(GradientAccumulationSteps, nameof(GradientAccumulationSteps));
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be positive and finite");
        if (!(WarmupRatio >= 0 && WarmupRatio <= 1)) throw new ArgumentOutOfRangeException(nameof(WarmupRatio), WarmupRatio, "WarmupRatio must be in [0, 1]");
        if (!(WeightDecay >= 0) || double.IsInfinity(WeightDecay)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must be ≥ 0 and finite");
        if (MaxGradNorm is { } clip && !(clip > 0)) throw new ArgumentOutOfRangeException(nameof(MaxGradNorm), clip, "MaxGradNorm must be positive (or null for no clipping)");
        if (EarlyStoppingPatience < 0) throw new ArgumentOutOfRangeException(nameof(EarlyStoppingPatience), EarlyStoppingPatience, "EarlyStoppingPatience must be ≥ 0");
        if (CheckpointEverySteps < 0) throw new ArgumentOutOfRangeException(nameof(CheckpointEverySteps), CheckpointEverySteps, "CheckpointEverySteps must be ≥ 0");
        if (!Enum.IsDefined(OptimizerState)) throw new ArgumentOutOfRangeException(nameof(OptimizerState), OptimizerState, "unknown optimizer state storage");
        if (LoraPlusLearningRateRatio is { } ratio && !(ratio > 0 && double.IsFinite(ratio)))
            throw new ArgumentOutOfRangeException(nameof(LoraPlusLearningRateRatio), ratio, "LoraPlusLearningRateRatio must be positive and finite (or null for no LoRA+)");
        if (GaLore is { } galore)
        {
            galore.Validate();
            if (CheckpointFolder is not null) throw new ArgumentException("GaLore cannot be combined with CheckpointFolder: its projected optimizer state is not checkpointed", nameof(GaLore));
            if (OptimizerState != AdamWStateStorage.Float32) throw new ArgumentException($"GaLore keeps its own optimizer state: set GaLoreOptions.EightBitState instead of OptimizerState = {OptimizerState}", nameof(GaLore));
        }
    }

    /// <summary>The settings that shape the trajectory, as text (part of a checkpoint's fingerprint).</summary>
    public string TrajectoryKey() => string.Create(CultureInfo.InvariantCulture,
        $"epochs={Epochs};batch={BatchSize};lr={LearningRate:R};warmup={WarmupRatio:R};wd={WeightDecay:R};accum={GradientAccumulationSteps};clip={MaxGradNorm?.ToString("R", CultureInfo.InvariantCulture) ?? "none"};seed={Seed};order={BatchOrder};patience={EarlyStoppingPatience}{(LoraPlusLearningRateRatio is { } r ? $";loraplus={r:R}" : "")}{(GaLore is { } g ? $";galore={g.Rank},{g.UpdateProjectionGap},{g.Scale:R},{g.Svd},{g.EightBitState},{g.Seed}" : "")}{(OptimizerState != AdamWStateStorage.Float32 ? $";optimizer_state={OptimizerState}" : "")}");

    /// <summary>Number of warm-up steps for <paramref name="totalSteps"/> (ceil, as Hugging Face's get_warmup_steps).</summary>
    public int WarmupSteps(int totalSteps) => LearningRateSchedule.WarmupSteps(WarmupRatio, totalSteps);

    internal static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);
}
