using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// A fine-tuned PEFT text classifier (any method: LoRA, IA3, BitFit, full fine-tuning, ...) as an ML.NET prediction
/// transformer: appends Score and PredictedLabel (and Probability for
/// binary) to its input, lazily, scoring rows in batches without autograd. It is a row-to-row mapper, so
/// <c>mlContext.Model.CreatePredictionEngine</c> works. Persist pipelines containing it with
/// <see cref="PeftModelPersistence"/> (ML.NET's <c>Model.Save</c> cannot store third-party transformers); export the
/// adapter alone in Hugging Face PEFT format with <see cref="SaveAdapter"/>.
/// </summary>
/// <remarks>
/// A LoRA classifier is a <see cref="LoraTextClassificationTransformer"/> (this class under LoRA's name, no code of its
/// own). As an <see cref="IPredictionTransformer{TModel}"/> it exposes <see cref="Model"/>: the method, base model and
/// classes of the fitted classifier.
/// </remarks>
public class PeftTextClassificationTransformer : IPredictionTransformer<PeftTextClassificationModelParameters>
{
    private readonly PredictionColumns predictions;

    private protected PeftTextClassificationTransformer(ClassifierParts parts)
    {
        Columns = parts.Columns;
        NumberOfClasses = parts.NumLabels;
        LabelKeyValues = parts.LabelKeyValues;
        Scorer = new ClassifierScorer(parts.Backend, parts.Encoder, parts.ScoringBatchSize);
        TrainingHistory = parts.History;
        predictions = new PredictionColumns(parts.Columns, parts.NumLabels, parts.LabelKeyValues);
        Model = new PeftTextClassificationModelParameters(parts.Backend, parts.NumLabels, parts.LabelKeyValues);
    }

    /// <summary>The method, base model and classes of this classifier (ML.NET's <c>Model</c> of a prediction transformer).</summary>
    public PeftTextClassificationModelParameters Model { get; }

    /// <summary>Number of classes (2 for binary).</summary>
    public int NumberOfClasses { get; }

    /// <summary>The PEFT method (the adapter's peft_type, e.g. "LORA", "IA3", "BITFIT", "FULL_FINETUNING").</summary>
    public string PeftType => Model.PeftType;

    /// <summary>The base model (folder or hub id) the adapter was trained on.</summary>
    public string BaseModel => Scorer.Backend.BaseModel.NameOrPath;

    /// <summary>Per-epoch training loss and validation figures (empty for a loaded model).</summary>
    public IReadOnlyList<EpochSummary> TrainingHistory { get; }

    /// <summary>Always true: the transformer maps rows one to one (required by the prediction engine).</summary>
    public bool IsRowToRowMapper => true;

    internal TextClassificationColumns Columns { get; }

    internal KeyValuesAnnotation? LabelKeyValues { get; }

    internal ClassifierScorer Scorer { get; }

    /// <summary>The input schema plus the prediction columns; checks the text columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        Columns.Bind(inputSchema, "the input schema", needLabel: false);
        return predictions.OutputSchema(inputSchema);
    }

    /// <summary>Appends the prediction columns (lazily; rows are scored when a cursor reads them).</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var texts = Columns.Bind(input.Schema, "the data to transform", needLabel: false);
        return new BatchPredictionDataView<float[]>(input, Scorer, predictions, texts) { Source = this };
    }

    /// <summary>A mapper that scores one row at a time (used by the prediction engine).</summary>
    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new AppendedPredictionMapper<float[]>(inputSchema, Columns.Bind(inputSchema, "the input schema", needLabel: false), Scorer, predictions);
    }

    /// <summary>Writes the adapter (and classification head) in Hugging Face PEFT format: adapter_config.json and adapter_model.safetensors.</summary>
    public void SaveAdapter(string folder)
    {
        ArgumentException.ThrowIfNullOrEmpty(folder);
        Scorer.Backend.SaveAdapter(folder);
    }

    /// <summary>
    /// Not supported: ML.NET gives third-party transformers no way to write into its model files. Use
    /// <see cref="PeftModelPersistence.Save"/> for whole pipelines.
    /// </summary>
    void ICanSaveModel.Save(ModelSaveContext ctx) =>
        throw new NotSupportedException(
            $"ML.NET's Model.Save cannot store a {GetType().Name} (third-party transformers cannot write model files). " +
            "Use Microsoft.ML.Peft.PeftModelPersistence.Save(mlContext, model, inputSchema, path) instead.");

    /// <summary>The transformer for fitted or loaded parts: LoRA adapters keep their named type.</summary>
    internal static PeftTextClassificationTransformer Create(ClassifierParts parts) =>
        parts.Backend.PeftType == "LORA" ? new LoraTextClassificationTransformer(parts) : new PeftTextClassificationTransformer(parts);
}
