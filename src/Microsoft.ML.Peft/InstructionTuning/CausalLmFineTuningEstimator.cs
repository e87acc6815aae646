using System.Globalization;
using Microsoft.ML.Peft.InstructionTuning;
using Microsoft.ML.Peft.QLora;

namespace Microsoft.ML.Peft;

/// <summary>
/// Instruction tuning of a decoder with QLoRA (or LoRA on float32 weights, or another PEFT method such as a soft
/// prompt through <see cref="Options.PeftConfig"/>) as an ML.NET estimator. Fit reads
/// (instruction, input, output) Text columns, writes each row as prompt (template) + response + EOS, trains the
/// adapter with the loss on the response tokens only, and returns a <see cref="CausalLmFineTuningTransformer"/> that
/// adds a generated-response column. Create it with <c>mlContext.Transforms.CausalLmFineTuning(options)</c>; Alpaca
/// JSONL files load with <see cref="InstructionJsonl"/>.
/// </summary>
/// <remarks>
/// Steps: column checks (before loading anything) → base model loaded and, with <see cref="Options.Quantization"/>,
/// its linear layers (all but the output head) quantized to 4 bits → LoRA injected (task CAUSAL_LM) → rows encoded by
/// <see cref="InstructionEncoder"/> (labels −100 on the prompt), optionally packed (<see cref="SequencePacker"/>) →
/// <see cref="CausalLmTrainingLoop"/>. Deterministic for a given <see cref="Options.Seed"/>.
/// </remarks>
public sealed partial class CausalLmFineTuningEstimator : IEstimator<CausalLmFineTuningTransformer>
{
    private readonly Options options;
    private readonly InstructionColumns columns;

    /// <summary>An estimator with <paramref name="options"/> (read again at Fit).</summary>
    public CausalLmFineTuningEstimator(Options options)
    {
        ArgumentNullException.ThrowIfNull(options);
        this.options = options;
        columns = InstructionColumns.From(options);
    }

    /// <summary>The input shape plus the generated Text column; checks the instruction, input and response columns.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        columns.Check(inputSchema, needResponse: true);
        // An extension cannot construct SchemaShape columns: CopyColumns of a Text column yields a Text column of the new name.
        return new MLContext().Transforms.CopyColumns(columns.Generated, columns.Instruction).GetOutputSchema(inputSchema);
    }

    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A column is missing or not Text, or a setting is out of range.</exception>
    /// <exception cref="ArgumentException">The base model is not set, or no row has a response token left after truncation.</exception>
    public CausalLmFineTuningTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var settings = Settings();
        if (string.IsNullOrWhiteSpace(options.BaseModel))
            throw new ArgumentException("Options.BaseModel must name the pretrained decoder (a local folder or a Hugging Face hub id)", nameof(input));
        if (options.MaxSequenceLength < 2) throw new ArgumentOutOfRangeException(nameof(input), options.MaxSequenceLength, "MaxSequenceLength must be at least 2");
        ArgumentNullException.ThrowIfNull(options.Template, "Options.Template");
        if (options.CheckpointKeepsProjectionOutputs && !options.GradientCheckpointing)
            throw new ArgumentException("Options.CheckpointKeepsProjectionOutputs needs Options.GradientCheckpointing = true: outputs are kept for the recompute of checkpointed blocks.", nameof(input));
        options.EffectiveGeneration.Validate();
        if (options.Quantization is { BlockSize: var block } && (block is < 32 or > 4096 || (block & (block - 1)) != 0))
            throw new ArgumentOutOfRangeException(nameof(input), block, "Quantization.BlockSize must be a power of two from 32 to 4096");

        var train = columns.Read(input, "the training data");
        if (train.Count == 0) throw new ArgumentException("the training data has no rows", nameof(input));
        var validation = options.ValidationSet is { } v ? columns.Read(v, "the validation set") : null;

        var backend = CausalLmBackend.Create(options);
        backend.Model.Decoder.GradientCheckpointing = options.GradientCheckpointing;
        backend.Model.Decoder.CheckpointKeepsProjectionOutputs = options.CheckpointKeepsProjectionOutputs;
        var encoder = new InstructionEncoder(backend.Tokenizer, options.Template, options.MaxSequenceLength, backend.EndOfSequenceId);
        var trainSequences = Encode(encoder, train, "training");
        var validationSequences = validation is null ? null : Encode(encoder, validation, "validation");
        if (options.Packing)
        {
            int before = trainSequences.Count;
            trainSequences = [.. SequencePacker.Pack(trainSequences, options.MaxSequenceLength)];
            options.Log?.Invoke($"packing: {before} sequences into {trainSequences.Count} rows of at most {options.MaxSequenceLength} tokens");
        }
        var history = new CausalLmTrainingLoop(backend.Model, settings, backend.PaddingId, options.Log, backend.Peft).Run(trainSequences, validationSequences);
        // Soft prompts: the trained encoder (MLP, LSTM, prefix projection) is replaced by its table, as PEFT saves it.
        PromptTuning.PromptEncoderLayer.UseLookupTables(backend.Model);
        return new CausalLmFineTuningTransformer(backend, columns, encoder, options.EffectiveGeneration, history);
    }

    private List<CausalLmSequence> Encode(InstructionEncoder encoder, List<InstructionExample> rows, string what)
    {
        var sequences = new List<CausalLmSequence>(rows.Count);
        int truncated = 0, dropped = 0;
        long tokens = 0, supervised = 0;
        foreach (var row in rows)
        {
            var sequence = encoder.Encode(row, out bool cut);
            if (cut) truncated++;
            if (sequence is null)
            {
                dropped++;
                continue;
            }
            sequences.Add(sequence);
            tokens += sequence.Length;
            supervised += sequence.SupervisedTokens;
        }
        options.Log?.Invoke(string.Create(CultureInfo.InvariantCulture,
            $"{what}: {rows.Count} rows, {tokens / (double)Math.Max(1, sequences.Count):F1} tokens per sequence, {supervised} response tokens, {truncated} truncated to {encoder.MaxLength} tokens, {dropped} dropped (prompt alone fills the length)"));
        if (sequences.Count == 0)
            throw new ArgumentException($"no {what} row keeps a response token within MaxSequenceLength = {encoder.MaxLength}; raise MaxSequenceLength or shorten the prompts");
        return sequences;
    }

    private CausalLmTrainingSettings Settings()
    {
        var settings = new CausalLmTrainingSettings
        {
            Epochs = options.MaxEpochs,
            BatchSize = options.BatchSize,
            LearningRate = options.LearningRate,
            WarmupRatio = options.WarmupRatio,
            WeightDecay = options.WeightDecay,
            MaxGradNorm = options.MaxGradientNorm,
            Seed = unchecked((ulong)(long)options.Seed),
            OptimizerState = options.OptimizerState,
            LossChunkPositions = options.LossChunkSize,
        };
        settings.Validate();
        return settings;
    }
}
