using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

public sealed partial class LoraTextClassificationTrainer
{
    /// <summary>
    /// Settings of LoRA text classification: the shared <see cref="TextClassificationTrainerOptions"/> plus LoRA's rank,
    /// alpha, dropout and targets (or a complete <see cref="Lora.LoraConfig"/>).
    /// </summary>
    public sealed class Options : TextClassificationTrainerOptions
    {
        /// <summary>
        /// The complete LoRA configuration (PEFT's LoraConfig: rank/alpha patterns, rsLoRA, init, bias, ...); when set,
        /// <see cref="LoraRank"/>, <see cref="LoraAlpha"/>, <see cref="LoraDropout"/> and <see cref="TargetModules"/> are
        /// ignored. Unset task_type, base_model_name_or_path and modules_to_save are filled in (SEQ_CLS, the base model,
        /// the classification head). Default null.
        /// </summary>
        public Lora.LoraConfig? LoraConfig { get; set; }

        /// <summary>LoRA rank r (PEFT's <c>r</c>). Default 8.</summary>
        public int LoraRank { get; set; } = 8;

        /// <summary>LoRA alpha (scaling = alpha / r). Default 16.</summary>
        public double LoraAlpha { get; set; } = 16;

        /// <summary>Dropout on the LoRA input during training. Default 0.05.</summary>
        public double LoraDropout { get; set; } = 0.05;

        /// <summary>
        /// Layers to adapt (PEFT's <c>target_modules</c>: names or suffixes such as "q_proj", or "all-linear"); null
        /// uses PEFT's default for the model type (query/value projections). Default null.
        /// </summary>
        public IReadOnlyList<string>? TargetModules { get; set; }

        internal override PeftConfig CreatePeftConfig(SequenceClassificationModel model)
        {
            if (LoraConfig is not null) return LoraConfig.Clone();
            var targets = TargetModules ?? Lora.LoraConfig.DefaultTargetModules(model.Config.ModelType)
                ?? throw new ArgumentException($"there is no default LoRA target for model type '{model.Config.ModelType}'; set Options.TargetModules (e.g. [\"all-linear\"])", nameof(model));
            return new LoraConfig
            {
                Rank = LoraRank,
                Alpha = LoraAlpha,
                Dropout = LoraDropout,
                TargetModules = targets is [var single] && single == ModuleSelector.AllLinearShorthand ? ModuleSelector.AllLinear : ModuleSelector.FromNames(targets),
            };
        }
    }
}
