using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft;

public sealed partial class QLoraEstimator
{
    /// <summary>
    /// Settings of QLoRA text classification. The QLoRA defaults are the paper's (Dettmers et al. 2023; qlora.py and the
    /// Guanaco scripts): NF4 weights in blocks of 64 with double-quantized scales, LoRA r = 64, alpha = 16, dropout 0.05 on
    /// every linear layer except the output head, learning rate 2e-4, gradient-norm clipping at 0.3, 3 % warm-up.
    /// Column names follow <see cref="LoraTextClassificationTrainer.Options"/>.
    /// </summary>
    public sealed class Options
    {
        /// <summary>Label column: Key&lt;UInt32&gt; for multiclass, Boolean for binary. Default "Label".</summary>
        public string LabelColumnName { get; set; } = "Label";

        /// <summary>Output column of class probabilities (multiclass) or of the raw margin (binary). Default "Score".</summary>
        public string ScoreColumnName { get; set; } = "Score";

        /// <summary>Output column of the predicted class. Default "PredictedLabel".</summary>
        public string PredictionColumnName { get; set; } = "PredictedLabel";

        /// <summary>Binary only: output column of the probability of the positive class. Default "Probability".</summary>
        public string ProbabilityColumnName { get; set; } = "Probability";

        /// <summary>Text column. Default "Sentence1".</summary>
        public string Sentence1ColumnName { get; set; } = "Sentence1";

        /// <summary>Optional second text column for sentence pairs. Default null.</summary>
        public string? Sentence2ColumnName { get; set; }

        /// <summary>The pretrained model: a local folder or a Hugging Face hub id. Required.</summary>
        public string? BaseModel { get; set; }

        /// <summary>Code book of the 4-bit base weights. Default NF4 (QLoRA's).</summary>
        public FourBitType QuantizationType { get; set; } = FourBitType.NF4;

        /// <summary>Weights per absmax scale: 32 … 4096, a power of two. Default 64.</summary>
        public int QuantizationBlockSize { get; set; } = QuantizedTensor4Bit.DefaultBlockSize;

        /// <summary>Quantize the scales themselves to 8 bits (≈ 4.127 instead of 4.5 bits per weight). Default true.</summary>
        public bool DoubleQuantization { get; set; } = true;

        /// <summary>LoRA rank r. Default 64 (QLoRA's).</summary>
        public int LoraRank { get; set; } = 64;

        /// <summary>LoRA alpha (scaling = alpha / r). Default 16.</summary>
        public double LoraAlpha { get; set; } = 16;

        /// <summary>Dropout on the LoRA input during training. Default 0.05.</summary>
        public double LoraDropout { get; set; } = 0.05;

        /// <summary>
        /// Layers to adapt (PEFT's target_modules). Default ["all-linear"]: every linear layer except the output head,
        /// which QLoRA found necessary to match 16-bit fine-tuning.
        /// </summary>
        public IReadOnlyList<string> TargetModules { get; set; } = ["all-linear"];

        /// <summary>Passes over the training data. Default 3.</summary>
        public int MaxEpochs { get; set; } = 3;

        /// <summary>Rows per optimizer step. Default 16.</summary>
        public int BatchSize { get; set; } = 16;

        /// <summary>Forward passes per optimizer step. Default 1.</summary>
        public int GradientAccumulationSteps { get; set; } = 1;

        /// <summary>Peak AdamW learning rate. Default 2e-4.</summary>
        public double LearningRate { get; set; } = 2e-4;

        /// <summary>Fraction of the steps spent warming up linearly; then linear decay. Default 0.03.</summary>
        public double WarmupRatio { get; set; } = 0.03;

        /// <summary>AdamW weight decay on trainable matrices. Default 0.</summary>
        public double WeightDecay { get; set; }

        /// <summary>Global gradient-norm clipping threshold (null: none). Default 0.3.</summary>
        public double? MaxGradientNorm { get; set; } = 0.3;

        /// <summary>Tokens per example; longer texts are truncated. Default 128.</summary>
        public int MaxSequenceLength { get; set; } = 128;

        /// <summary>Scored after every epoch. Default null.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Seed of initialisation, dropout and batch order. Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>Rows per forward pass when scoring. Default 32.</summary>
        public int ScoringBatchSize { get; set; } = 32;

        /// <summary>
        /// How AdamW keeps its moments (<see cref="TextClassificationTrainerOptions.OptimizerState"/>): float32, 8-bit
        /// blockwise (bitsandbytes' 8-bit AdamW, QLoRA's usual choice) or paged. Default Float32.
        /// </summary>
        public AdamWStateStorage OptimizerState { get; set; } = AdamWStateStorage.Float32;

        /// <summary>
        /// Recompute each decoder block's activations in the backward pass
        /// (<see cref="TextClassificationTrainerOptions.GradientCheckpointing"/>); the gradients are unchanged. Default false.
        /// </summary>
        public bool GradientCheckpointing { get; set; }

        /// <summary>
        /// With <see cref="GradientCheckpointing"/>: keep the 4-bit o_proj/down_proj outputs for the recompute
        /// (<see cref="TextClassificationTrainerOptions.CheckpointKeepsProjectionOutputs"/>); gradients are unchanged.
        /// Default false.
        /// </summary>
        public bool CheckpointKeepsProjectionOutputs { get; set; }

        /// <summary>Receives log lines. Default null.</summary>
        public Action<string>? Log { get; set; }
    }
}
