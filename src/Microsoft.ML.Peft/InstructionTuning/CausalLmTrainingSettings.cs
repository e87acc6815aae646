using Microsoft.ML.Peft.Optim;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>Optimisation settings of <see cref="CausalLmTrainingLoop"/> (validated by <see cref="Validate"/>).</summary>
internal sealed record CausalLmTrainingSettings
{
    public int Epochs { get; init; } = 1;

    public int BatchSize { get; init; } = 8;

    public double LearningRate { get; init; } = 2e-4;

    public double WarmupRatio { get; init; } = 0.03;

    public double WeightDecay { get; init; }

    public double? MaxGradNorm { get; init; } = 0.3;

    public ulong Seed { get; init; }

    public AdamWStateStorage OptimizerState { get; init; } = AdamWStateStorage.Float32;

    /// <summary>Positions per chunk of the head + loss (<see cref="CausalLmLoss.Sum"/>); 0 = all at once.</summary>
    public int LossChunkPositions { get; init; }

    public void Validate()
    {
        if (Epochs <= 0) throw new ArgumentOutOfRangeException(nameof(Epochs), Epochs, "MaxEpochs must be positive");
        if (BatchSize <= 0) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "BatchSize must be positive");
        if (!(LearningRate > 0) || double.IsInfinity(LearningRate)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "LearningRate must be a positive finite number");
        if (!(WarmupRatio >= 0 && WarmupRatio < 1)) throw new ArgumentOutOfRangeException(nameof(WarmupRatio), WarmupRatio, "WarmupRatio must be in [0, 1)");
        if (!(WeightDecay >= 0)) throw new ArgumentOutOfRangeException(nameof(WeightDecay), WeightDecay, "WeightDecay must be ≥ 0");
        if (MaxGradNorm is { } m && !(m > 0)) throw new ArgumentOutOfRangeException(nameof(MaxGradNorm), m, "MaxGradientNorm must be positive (or null to disable clipping)");
        if (LossChunkPositions < 0) throw new ArgumentOutOfRangeException(nameof(LossChunkPositions), LossChunkPositions, "LossChunkSize must be ≥ 0 (0: no chunking)");
        if (!Enum.IsDefined(OptimizerState)) throw new ArgumentOutOfRangeException(nameof(OptimizerState), OptimizerState, "unknown optimizer state storage");
    }
}
