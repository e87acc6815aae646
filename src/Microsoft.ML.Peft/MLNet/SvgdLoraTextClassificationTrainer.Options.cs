using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

public sealed partial class SvgdLoraTextClassificationTrainer
{
    /// <summary>
    /// Settings of an ensemble of LoRA text classifiers: the shared <see cref="TextClassificationTrainerOptions"/>, LoRA's
    /// rank, alpha, dropout and targets (as <see cref="LoraTextClassificationTrainer.Options"/>), and the ensemble's
    /// method, size and SVGD settings.
    /// </summary>
    public sealed class Options : TextClassificationTrainerOptions
    {
        /// <summary>How the members are obtained. Default <see cref="EnsembleMethod.Svgd"/>.</summary>
        public EnsembleMethod Method { get; set; } = EnsembleMethod.Svgd;

        /// <summary>
        /// Members n: SVGD particles, deep-ensemble members, checkpoints (the last n epochs, n ≤ MaxEpochs) or MC-dropout
        /// passes. Default 4.
        /// </summary>
        public int ParticleCount { get; set; } = 4;

        /// <summary>SVGD posterior temperature T (log p = −(N/T)·mean loss); above 1 spreads the particles. Default 1.</summary>
        public double Temperature { get; set; } = 1;

        /// <summary>SVGD's fixed RBF bandwidth H in exp(−‖a−b‖²/H); null: the median heuristic, recomputed every step. Default null.</summary>
        public double? KernelBandwidth { get; set; }

        /// <summary>Seed of the MC-dropout masks (each scoring batch restarts from it, so results are reproducible). Default 0.</summary>
        public int MonteCarloSeed { get; set; }

        /// <summary>Output column of the entropy of the mean prediction (nats). Default "PredictiveEntropy".</summary>
        public string PredictiveEntropyColumnName { get; set; } = "PredictiveEntropy";

        /// <summary>Output column of the members' disagreement, entropy minus mean member entropy (nats). Default "MutualInformation".</summary>
        public string MutualInformationColumnName { get; set; } = "MutualInformation";

        /// <summary>As <see cref="LoraTextClassificationTrainer.Options.LoraConfig"/>; the config every member uses. Default null.</summary>
        public Lora.LoraConfig? LoraConfig { get; set; }

        /// <summary>LoRA rank r. Default 8.</summary>
        public int LoraRank { get; set; } = 8;

        /// <summary>LoRA alpha (scaling = alpha / r). Default 16.</summary>
        public double LoraAlpha { get; set; } = 16;

        /// <summary>Dropout on the LoRA input (MC dropout needs it above 0). Default 0.05.</summary>
        public double LoraDropout { get; set; } = 0.05;

        /// <summary>Layers to adapt (PEFT's target_modules); null: PEFT's default for the model type. Default null.</summary>
        public IReadOnlyList<string>? TargetModules { get; set; }

        internal override void ValidateMethod()
        {
            if (ParticleCount < 1) throw new ArgumentOutOfRangeException(nameof(ParticleCount), ParticleCount, "an ensemble needs at least one member (ParticleCount ≥ 1)");
            if (!(Temperature > 0) || !double.IsFinite(Temperature)) throw new ArgumentOutOfRangeException(nameof(Temperature), Temperature, "Temperature must be positive and finite");
            if (KernelBandwidth is { } h && !(h > 0 && double.IsFinite(h))) throw new ArgumentOutOfRangeException(nameof(KernelBandwidth), h, "KernelBandwidth must be positive and finite (or null for the median heuristic)");
            if (Method == EnsembleMethod.CheckpointEnsemble && ParticleCount > MaxEpochs)
                throw new ArgumentOutOfRangeException(nameof(ParticleCount), ParticleCount, $"a checkpoint ensemble takes the weights at the end of the last ParticleCount epochs; MaxEpochs is only {MaxEpochs}");
            double dropout = LoraConfig?.Dropout ?? LoraDropout;
            if (Method == EnsembleMethod.MonteCarloDropout && !(dropout > 0))
                throw new ArgumentOutOfRangeException(nameof(LoraDropout), dropout, "MC dropout needs LoRA dropout above 0 (LoraDropout or LoraConfig.Dropout)");
            if (LoraPlusLearningRateRatio is not null && Method is EnsembleMethod.Svgd or EnsembleMethod.DeepEnsemble)
                throw new ArgumentException("LoraPlusLearningRateRatio is not supported for SVGD and deep ensembles (their particles share one optimizer with one group per decay rule)", nameof(LoraPlusLearningRateRatio));
            if (string.IsNullOrEmpty(PredictiveEntropyColumnName) || string.IsNullOrEmpty(MutualInformationColumnName) || PredictiveEntropyColumnName == MutualInformationColumnName)
                throw new ArgumentException("PredictiveEntropyColumnName and MutualInformationColumnName must be two different non-empty names", nameof(PredictiveEntropyColumnName));
        }

        /// <summary>The LoRA config, built exactly as the LoRA trainer builds it (same defaults, same errors).</summary>
        internal override PeftConfig CreatePeftConfig(SequenceClassificationModel model) => new LoraTextClassificationTrainer.Options
        {
            LoraConfig = LoraConfig, LoraRank = LoraRank, LoraAlpha = LoraAlpha, LoraDropout = LoraDropout, TargetModules = TargetModules,
        }.CreatePeftConfig(model);
    }
}
