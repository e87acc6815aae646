using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Training;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

/// <summary>
/// Settings every PEFT text-classification trainer shares: columns, base model, optimisation, checkpoints, progress.
/// Column names and batch/epoch defaults follow ML.NET's TorchSharp <c>TextClassificationTrainer</c>; the optimisation
/// defaults follow Hugging Face PEFT's LoRA recipes. The method comes from the derived options:
/// <see cref="PeftTextClassificationTrainer.Options"/> (any <see cref="PeftConfig"/>) or
/// <see cref="LoraTextClassificationTrainer.Options"/> (LoRA's named shortcut).
/// </summary>
public abstract class TextClassificationTrainerOptions
{
    private protected TextClassificationTrainerOptions()
    {
    }

    /// <summary>Label column: Key&lt;UInt32&gt; (from MapValueToKey) for multiclass, Boolean for binary. Default "Label".</summary>
    public string LabelColumnName { get; set; } = "Label";

    /// <summary>Output column of class probabilities (multiclass) or of the raw margin (binary). Default "Score".</summary>
    public string ScoreColumnName { get; set; } = "Score";

    /// <summary>Output column of the predicted class. Default "PredictedLabel".</summary>
    public string PredictionColumnName { get; set; } = "PredictedLabel";

    /// <summary>Binary only: output column of the probability of the positive class. Default "Probability".</summary>
    public string ProbabilityColumnName { get; set; } = "Probability";

    /// <summary>Text column (Text scalar). Null values are treated as empty strings. Default "Sentence1".</summary>
    public string Sentence1ColumnName { get; set; } = "Sentence1";

    /// <summary>Optional second text column for sentence-pair tasks (null: single sentences). Default null.</summary>
    public string? Sentence2ColumnName { get; set; }

    /// <summary>
    /// The pretrained model: a local folder with config.json, weights and tokenizer files, or a Hugging Face hub id
    /// (downloaded into the hub cache). Required.
    /// </summary>
    public string? BaseModel { get; set; }

    /// <summary>Passes over the training data. Default 10 (as TorchSharp's text classifier).</summary>
    public int MaxEpochs { get; set; } = 10;

    /// <summary>Rows per forward pass. Default 32.</summary>
    public int BatchSize { get; set; } = 32;

    /// <summary>Forward passes per optimizer step (effective batch = BatchSize × this). Default 1.</summary>
    public int GradientAccumulationSteps { get; set; } = 1;

    /// <summary>Peak AdamW learning rate. Default 2e-4.</summary>
    public double LearningRate { get; set; } = 2e-4;

    /// <summary>Fraction of the optimizer steps spent warming the rate up linearly from 0; then it decays linearly to 0. Default 0.06.</summary>
    public double WarmupRatio { get; set; } = 0.06;

    /// <summary>AdamW decoupled weight decay on trainable matrices (not biases or norm scales). Default 0.01.</summary>
    public double WeightDecay { get; set; } = 0.01;

    /// <summary>
    /// LoRA+ (Hayou et al. 2024; PEFT's <c>create_loraplus_optimizer</c>): the B matrices of the adapter (parameters
    /// named "lora_B", and vectors such as biases) train at this ratio × <see cref="LearningRate"/>, the A matrices at
    /// the learning rate. PEFT's documentation uses 16 (<see cref="Lora.LoraPlus.DefaultLrRatio"/>). Weight decay
    /// still applies to matrices only. Default null (LoRA+ off: every parameter at the learning rate).
    /// </summary>
    public double? LoraPlusLearningRateRatio { get; set; }

    /// <summary>
    /// GaLore (Zhao et al. 2024) instead of AdamW, meant for full fine-tuning (<c>SelectiveConfig.Full()</c>): every
    /// trainable 2-D weight of a linear layer gets <see cref="GaLore.GaLoreAdamW"/> (Adam state in a rank-r projection of
    /// its gradient, refreshed every <see cref="GaLore.GaLoreOptions.UpdateProjectionGap"/> steps, optionally 8-bit),
    /// everything else plain AdamW; learning rate, schedule, weight-decay rule and clipping are unchanged. With a rank
    /// at least the weights' short side and scale 1 it is plain AdamW bit for bit. Cannot be combined with
    /// <see cref="CheckpointFolder"/> (GaLore's state is not checkpointed). Default null (AdamW).
    /// </summary>
    public GaLore.GaLoreOptions? GaLore { get; set; }

    /// <summary>Global gradient-norm clipping threshold; null disables clipping. Default 1.0.</summary>
    public double? MaxGradientNorm { get; set; } = 1.0;

    /// <summary>
    /// How AdamW keeps its two moments: float32 (default), 8-bit blockwise quantized as bitsandbytes' 8-bit AdamW
    /// (about 2 bytes per trainable parameter instead of 8), or either of them paged through a memory-mapped file
    /// (<see cref="AdamWStateStorage"/>). Resumable checkpoints store the moments as float32 whatever the storage; a
    /// resumed 8-bit run re-quantizes them to the same codes and continues as the uninterrupted one.
    /// Default <see cref="AdamWStateStorage.Float32"/>.
    /// </summary>
    public AdamWStateStorage OptimizerState { get; set; } = AdamWStateStorage.Float32;

    /// <summary>
    /// Gradient checkpointing of a decoder base model (Llama family, GPT-2, GPT-NeoX;
    /// <see cref="Models.DecoderModel.GradientCheckpointing"/>): each block keeps only its input and recomputes its
    /// activations in backward, replaying its dropout masks, so the weights follow the same trajectory with less
    /// activation memory and about one more forward pass per step. Encoder models refuse it. Default false.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// With <see cref="GradientCheckpointing"/>: each block also keeps the outputs of its 4-bit residual-branch output
    /// projections, so backward recomputes a third fewer multiply-adds for two [tokens, hidden] tensors per layer
    /// (<see cref="Models.DecoderModel.CheckpointKeepsProjectionOutputs"/>; only quantized bases, i.e. QLoRA, take
    /// part). Gradients are unchanged. Default false.
    /// </summary>
    public bool CheckpointKeepsProjectionOutputs { get; set; }

    /// <summary>
    /// Tokens per example including special tokens; longer texts are truncated (longest-first for pairs) and
    /// counted in the log. Default 128.
    /// </summary>
    public int MaxSequenceLength { get; set; } = 128;

    /// <summary>Batch composition each epoch. Default <see cref="Training.BatchOrder.Shuffled"/>.</summary>
    public BatchOrder BatchOrder { get; set; } = BatchOrder.Shuffled;

    /// <summary>Scored after every epoch (loss and accuracy); needed for early stopping. Default null.</summary>
    public IDataView? ValidationSet { get; set; }

    /// <summary>
    /// Stop after this many epochs without a lower validation loss and keep the best epoch's weights; 0 disables
    /// early stopping. Default 0.
    /// </summary>
    public int EarlyStoppingPatience { get; set; }

    /// <summary>
    /// Seed of everything random: head and LoRA initialisation, dropout, batch order. Same seed, data and options
    /// give bit-identical weights. Default 0 (the catalog's MLContext seed cannot be read by an extension).
    /// </summary>
    public int Seed { get; set; }

    /// <summary>
    /// Folder for resumable checkpoints (trainable weights, optimizer state, counters; written atomically). When it
    /// holds a checkpoint of the same run, Fit resumes from it. Default null (no checkpoints).
    /// </summary>
    public string? CheckpointFolder { get; set; }

    /// <summary>Write a checkpoint every this many optimizer steps (0: only after each epoch). Default 0.</summary>
    public int CheckpointEverySteps { get; set; }

    /// <summary>Rows per forward pass when scoring in Transform. Default 32.</summary>
    public int ScoringBatchSize { get; set; } = 32;

    /// <summary>
    /// Receives progress reports synchronously on the training thread (an exception from it aborts Fit; a
    /// checkpointed run can then be resumed). Note that <see cref="Progress{T}"/> posts asynchronously. Default null.
    /// </summary>
    public IProgress<TrainingProgress>? Progress { get; set; }

    /// <summary>
    /// Receives log lines (data statistics, truncation counts, epoch summaries). Extensions cannot raise
    /// <c>MLContext.Log</c>; pass e.g. <c>Console.WriteLine</c>. Default null (silent).
    /// </summary>
    public Action<string>? Log { get; set; }

    /// <summary>
    /// The method's configuration for <paramref name="model"/> (a copy the caller may fill in: task type, base model,
    /// modules_to_save); throws <see cref="ArgumentException"/> when the options do not describe one.
    /// </summary>
    internal abstract PeftConfig CreatePeftConfig(SequenceClassificationModel model);

    /// <summary>Checks the method's settings that can be checked without the model (called by Fit before loading it).</summary>
    internal virtual void ValidateMethod()
    {
    }
}
