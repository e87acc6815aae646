using Microsoft.ML.Data;
using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.InstructionTuning;
using Microsoft.ML.Peft.Models;

namespace Microsoft.ML.Peft;

/// <summary>
/// An instruction-tuned decoder as an ML.NET transformer: appends a Text column with the model's response to each
/// row's prompt (the template applied to its instruction and input columns), generated lazily with
/// <see cref="TextGeneration"/> (greedy by default) when the column is read. Works with the prediction engine.
/// Persist it with <see cref="Save"/> / <see cref="Load"/> (adapter in PEFT format + base identity; a 4-bit base is
/// re-quantized deterministically on load).
/// </summary>
public sealed class CausalLmFineTuningTransformer : ITransformer
{
    private readonly CausalLmBackend backend;
    private readonly InstructionColumns columns;

    internal CausalLmFineTuningTransformer(CausalLmBackend backend, InstructionColumns columns, InstructionEncoder encoder, GenerationOptions generation, IReadOnlyList<CausalLmEpochSummary> history)
    {
        this.backend = backend;
        this.columns = columns;
        Encoder = encoder;
        GenerationOptions = generation;
        TrainingHistory = history;
    }

    /// <summary>The fine-tuned model (base + adapter), in evaluation mode.</summary>
    public CausalLanguageModel Model => backend.Model;

    /// <summary>Tokenization and prompt template of training, reused for generation.</summary>
    public InstructionEncoder Encoder { get; }

    /// <summary>How responses are generated.</summary>
    public GenerationOptions GenerationOptions { get; }

    /// <summary>Per-epoch losses (empty for a loaded transformer).</summary>
    public IReadOnlyList<CausalLmEpochSummary> TrainingHistory { get; }

    /// <summary>The base model's folder or hub id.</summary>
    public string BaseModel => backend.BaseModel.NameOrPath;

    /// <summary>Always true: one output row per input row.</summary>
    public bool IsRowToRowMapper => true;

    /// <summary>The input schema plus the generated Text column; checks the prompt columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        BindPrompt(inputSchema);
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(inputSchema);
        builder.AddColumn(columns.Generated, TextDataViewType.Instance);
        return builder.ToSchema();
    }

    /// <summary>Appends the generated column (lazily: a row is generated when read).</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new GeneratedTextDataView(input, this);
    }

    /// <summary>A mapper for the prediction engine.</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new Mapper(this, inputSchema);
    }

    /// <summary>The response to one (instruction, input): the decoded continuation, special tokens (EOS) removed.</summary>
    public string Generate(string instruction, string? input = null)
    {
        var prompt = Encoder.EncodePrompt(instruction, input);
        return Model.Generate(prompt, GenerationOptions, ids => backend.Tokenizer.Decode(ids, skipSpecialTokens: true)).Text ?? "";
    }

    /// <summary>
    /// Mean cross-entropy per response token and perplexity on <paramref name="data"/> (instruction, input and
    /// response columns, encoded exactly as in training).
    /// </summary>
    public CausalLmMetrics Evaluate(IDataView data, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(data);
        var sequences = columns.Read(data, "the evaluation data").Select(e => Encoder.Encode(e, out _)).OfType<CausalLmSequence>().ToList();
        var (loss, tokens) = CausalLmLoss.Evaluate(Model, sequences, batchSize, backend.PaddingId);
        return new CausalLmMetrics(loss, Math.Exp(loss), tokens);
    }

    /// <summary>Writes the adapter alone in Hugging Face PEFT format (adapter_config.json, adapter_model.safetensors).</summary>
    public void SaveAdapter(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        backend.Peft.SavePretrained(folder);
    }

    /// <summary>Writes the adapter (PEFT format) and causal_lm.json (columns, template, generation settings, base identity) into <paramref name="folder"/>.</summary>
    public void Save(string folder)
    {
        SaveAdapter(folder);
        new CausalLmManifest
        {
            InstructionColumn = columns.Instruction,
            InputColumn = columns.Input,
            ResponseColumn = columns.Response,
            GeneratedColumn = columns.Generated,
            TemplateWithInput = Encoder.Template.WithInput,
            TemplateWithoutInput = Encoder.Template.WithoutInput,
            MaxSequenceLength = Encoder.MaxLength,
            EndOfSequenceId = Encoder.EndOfSequenceId,
            Generation = GenerationOptions,
            BaseModel = backend.BaseModel,
        }.Save(folder);
    }

    /// <summary>
    /// Loads a transformer written by <see cref="Save"/>: the base model is loaded from its stored location (or
    /// <paramref name="baseModel"/>), checked against the stored SHA-256 of its weights, re-quantized with the stored
    /// settings, and the adapter attached frozen. Generations are identical to the saved transformer's.
    /// </summary>
    /// <exception cref="FileNotFoundException">causal_lm.json or the adapter files are missing.</exception>
    /// <exception cref="InvalidDataException">The manifest is invalid, or the base weights differ from the trained ones.</exception>
    public static CausalLmFineTuningTransformer Load(string folder, string? baseModel = null, Action<string>? log = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"causal-LM model folder not found: {folder}");
        var manifest = CausalLmManifest.Load(folder);
        var reference = baseModel is null ? manifest.BaseModel
            : new BaseModelReference { NameOrPath = baseModel, WeightsSha256 = manifest.BaseModel.WeightsSha256, Quantization = manifest.BaseModel.Quantization };
        var backend = CausalLmBackend.Load(reference, folder, manifest.EndOfSequenceId, log);
        var template = new PromptTemplate(manifest.TemplateWithInput, manifest.TemplateWithoutInput);
        var columns = new InstructionColumns(manifest.InstructionColumn, manifest.InputColumn, manifest.ResponseColumn, manifest.GeneratedColumn);
        var encoder = new InstructionEncoder(backend.Tokenizer, template, manifest.MaxSequenceLength, backend.EndOfSequenceId);
        manifest.Generation.Validate();
        return new CausalLmFineTuningTransformer(backend, columns, encoder, manifest.Generation, []);
    }

    /// <summary>
    /// Not supported: ML.NET gives third-party transformers no way to write into its model files. Use <see cref="Save"/>.
    /// </summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException("ML.NET's Model.Save cannot store a CausalLmFineTuningTransformer (third-party transformers cannot write model files). Use its Save(folder) and CausalLmFineTuningTransformer.Load(folder) instead.");

    /// <summary>The prompt columns of <paramref name="schema"/> (instruction, then input if configured); throws naming a missing or non-Text column.</summary>
    internal IReadOnlyList<DataViewSchema.Column> BindPrompt(DataViewSchema schema)
    {
        var (instruction, input, _) = columns.Bind(schema, "the input schema", needResponse: false);
        return input is { } i ? [instruction, i] : [instruction];
    }

    private sealed class Mapper(CausalLmFineTuningTransformer parent, DataViewSchema inputSchema) : IRowToRowMapper
    {
        public DataViewSchema InputSchema { get; } = inputSchema;

        public DataViewSchema OutputSchema { get; } = parent.GetOutputSchema(inputSchema);

        public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
        {
            var list = dependingColumns.ToList();
            var result = list.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]).ToList();
            if (list.Any(c => c.Index >= InputSchema.Count)) result.AddRange(parent.BindPrompt(InputSchema));
            return result.DistinctBy(c => c.Index);
        }

        public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        {
            ArgumentNullException.ThrowIfNull(input);
            bool active = activeColumns.Any(c => c.Index >= InputSchema.Count);
            return new GeneratedTextRow(input, OutputSchema, active, parent);
        }
    }
}

/// <summary>Language-modelling figures on labelled data.</summary>
/// <param name="Loss">Mean cross-entropy per response token (nats).</param>
/// <param name="Perplexity">exp(<paramref name="Loss"/>).</param>
/// <param name="Tokens">Response tokens averaged over.</param>
public sealed record CausalLmMetrics(double Loss, double Perplexity, long Tokens);
