using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.InstructionTuning;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.QLora;

namespace Microsoft.ML.Peft;

public sealed partial class CausalLmFineTuningEstimator
{
    /// <summary>
    /// Settings of instruction tuning. Defaults are QLoRA's (Dettmers et al. 2023): NF4 base weights (block 64, double
    /// quantization), LoRA r = 64, alpha = 16, dropout 0.05 on all linear layers but the output head, learning rate 2e-4,
    /// clipping at 0.3, 3 % warm-up; set <see cref="Quantization"/> to null for plain LoRA on float32 weights.
    /// </summary>
    public sealed class Options
    {
        /// <summary>The pretrained decoder (Llama/Mistral/Qwen2/GPT-2/GPT-NeoX): a local folder or hub id. Required.</summary>
        public string? BaseModel { get; set; }

        /// <summary>Text column holding the instruction (at Fit and Transform). Default "Instruction".</summary>
        public string InstructionColumnName { get; set; } = "Instruction";

        /// <summary>Optional Text column holding the input/context; null = the data has none. Default "Input".</summary>
        public string? InputColumnName { get; set; } = "Input";

        /// <summary>Text column holding the response to learn (read by Fit only). Default "Output".</summary>
        public string ResponseColumnName { get; set; } = "Output";

        /// <summary>Text column the fitted transformer adds with the generated response. Default "Generated".</summary>
        public string GeneratedColumnName { get; set; } = "Generated";

        /// <summary>How (instruction, input) become a prompt. Default <see cref="PromptTemplate.Alpaca"/>.</summary>
        public PromptTemplate Template { get; set; } = PromptTemplate.Alpaca;

        /// <summary>Most tokens per training sequence (prompt + response + EOS); longer ones are cut at the end. Default 256.</summary>
        public int MaxSequenceLength { get; set; } = 256;

        /// <summary>
        /// The token appended to every response, and where generation stops; null = the model's EOS (config.json's
        /// eos_token_id, else the tokenizer's). Set it for a model that never saw its EOS in pre-training (e.g.
        /// llama2.c's stories models separate stories with BOS = 1). Default null.
        /// </summary>
        public int? EndOfSequenceTokenId { get; set; }

        /// <summary>Pack sequences into rows of <see cref="MaxSequenceLength"/> tokens (see <see cref="SequencePacker"/> for what attention sees). Default false.</summary>
        public bool Packing { get; set; }

        /// <summary>4-bit quantization of the base's linear layers (QLoRA); null = float32 base (plain LoRA). Default NF4, block 64, double quantization.</summary>
        public QuantizationOptions? Quantization { get; set; } = new();

        /// <summary>LoRA rank r. Default 64.</summary>
        public int LoraRank { get; set; } = 64;

        /// <summary>LoRA alpha (scaling = alpha / r). Default 16.</summary>
        public double LoraAlpha { get; set; } = 16;

        /// <summary>Dropout on the LoRA input during training. Default 0.05.</summary>
        public double LoraDropout { get; set; } = 0.05;

        /// <summary>Layers to adapt (PEFT's target_modules). Default ["all-linear"] (every linear layer but the output head).</summary>
        public IReadOnlyList<string> TargetModules { get; set; } = ["all-linear"];

        /// <summary>
        /// Another PEFT method instead of LoRA (e.g. <see cref="PromptTuning.PromptTuningConfig"/>,
        /// <see cref="PrefixTuning.PrefixTuningConfig"/>, <see cref="PTuning.PromptEncoderConfig"/>,
        /// <see cref="AdaptionPrompt.AdaptionPromptConfig"/>): injected with task_type CAUSAL_LM on a copy, and the LoRA
        /// settings (rank, alpha, dropout, target modules) are not used. Default null (LoRA from those settings).
        /// </summary>
        public Tuners.PeftConfig? PeftConfig { get; set; }

        /// <summary>Passes over the training data. Default 3.</summary>
        public int MaxEpochs { get; set; } = 3;

        /// <summary>Sequences (or packed rows) per optimizer step. Default 8.</summary>
        public int BatchSize { get; set; } = 8;

        /// <summary>Peak AdamW learning rate. Default 2e-4.</summary>
        public double LearningRate { get; set; } = 2e-4;

        /// <summary>Fraction of the steps spent warming up linearly; then linear decay to 0. Default 0.03.</summary>
        public double WarmupRatio { get; set; } = 0.03;

        /// <summary>AdamW weight decay on trainable matrices. Default 0.</summary>
        public double WeightDecay { get; set; }

        /// <summary>Global gradient-norm clipping threshold (null: none). Default 0.3.</summary>
        public double? MaxGradientNorm { get; set; } = 0.3;

        /// <summary>AdamW moment storage: float32, 8-bit blockwise (bitsandbytes' 8-bit AdamW) or paged. Default Float32.</summary>
        public AdamWStateStorage OptimizerState { get; set; } = AdamWStateStorage.Float32;

        /// <summary>
        /// Gradient checkpointing (<see cref="Models.DecoderModel.GradientCheckpointing"/>): each decoder block keeps only
        /// its input and recomputes its activations in backward, replaying its dropout masks, so training follows the
        /// same trajectory with less activation memory and about one more forward pass per step. Default false.
        /// </summary>
        public bool GradientCheckpointing { get; set; }

        /// <summary>
        /// With <see cref="GradientCheckpointing"/>: each block also keeps the outputs of its 4-bit residual-branch output
        /// projections (<see cref="Models.DecoderModel.CheckpointKeepsProjectionOutputs"/>), so backward recomputes a third
        /// fewer multiply-adds; only a quantized (QLoRA) base takes part. Gradients are unchanged. Default false.
        /// </summary>
        public bool CheckpointKeepsProjectionOutputs { get; set; }

        /// <summary>
        /// Positions per chunk of the language-modelling head and loss in training: with a large vocabulary the
        /// [batch, seq, vocab] logits, their softmax and their gradient are the largest activations of a step; in chunks
        /// (each recomputed in backward) only a [batch, chunk, vocab] block exists at a time. The loss equals the
        /// unchunked one up to float summation order. 0 = no chunking. Default 0.
        /// </summary>
        public int LossChunkSize { get; set; }

        /// <summary>Evaluated (loss, perplexity) after each epoch; needs the same columns as the training data. Default null.</summary>
        public IDataView? ValidationSet { get; set; }

        /// <summary>Seed of LoRA initialisation, dropout and batch order. Default 0.</summary>
        public int Seed { get; set; }

        /// <summary>Most tokens generated per row by the fitted transformer (greedy unless <see cref="Generation"/> says otherwise). Default 32.</summary>
        public int MaxNewTokens { get; set; } = 32;

        /// <summary>Full generation settings; when set, <see cref="MaxNewTokens"/> and the stop token of <see cref="EndOfSequenceTokenId"/> are not applied. Default null (greedy).</summary>
        public GenerationOptions? Generation { get; set; }

        /// <summary>Receives log lines (data statistics, losses). Default null.</summary>
        public Action<string>? Log { get; set; }

        /// <summary>The generation settings the transformer uses.</summary>
        internal GenerationOptions EffectiveGeneration => Generation ?? new GenerationOptions
        {
            MaxNewTokens = MaxNewTokens,
            EosTokenIds = EndOfSequenceTokenId is { } eos ? [eos] : null,
        };
    }
}
