using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft;

/// <summary>
/// Everything besides the adapter weights that a saved <see cref="PeftTextClassificationTransformer"/> needs:
/// <c>classifier.json</c> next to <c>adapter_config.json</c> and <c>adapter_model.safetensors</c>.
/// </summary>
internal sealed class ClassifierManifest
{
    public const string FileName = "classifier.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull };

    public int Format { get; set; } = 1;

    /// <summary>"multiclass" or "binary".</summary>
    public string Task { get; set; } = "";

    public int NumLabels { get; set; }

    public string LabelColumn { get; set; } = "";

    public string Sentence1Column { get; set; } = "";

    public string? Sentence2Column { get; set; }

    public string ScoreColumn { get; set; } = "";

    public string PredictedLabelColumn { get; set; } = "";

    public string ProbabilityColumn { get; set; } = "";

    /// <summary>Item type of the label's KeyValues, or null when it had none.</summary>
    public string? KeyValuesType { get; set; }

    public string[]? KeyValues { get; set; }

    public int MaxSequenceLength { get; set; }

    public int ScoringBatchSize { get; set; }

    public BaseModelReference BaseModel { get; set; } = new();

    public static ClassifierManifest From(PeftTextClassificationTransformer transformer)
    {
        var c = transformer.Columns;
        return new ClassifierManifest
        {
            Task = c.Kind == ClassificationKind.Binary ? "binary" : "multiclass",
            NumLabels = transformer.NumberOfClasses,
            LabelColumn = c.Label,
            Sentence1Column = c.Sentence1,
            Sentence2Column = c.Sentence2,
            ScoreColumn = c.Score,
            PredictedLabelColumn = c.PredictedLabel,
            ProbabilityColumn = c.Probability,
            KeyValuesType = transformer.LabelKeyValues?.TypeName,
            KeyValues = transformer.LabelKeyValues?.Values,
            MaxSequenceLength = transformer.Scorer.Encoder.MaxLength,
            ScoringBatchSize = transformer.Scorer.BatchSize,
            BaseModel = transformer.Scorer.Backend.BaseModel,
        };
    }

    public void Save(string folder) => AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(this, Json));

    public static ClassifierManifest Load(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{FileName} is missing in {folder}", path);
        ClassifierManifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<ClassifierManifest>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid classifier manifest: {e.Message}", e);
        }
        if (manifest.Format != 1) throw new InvalidDataException($"{path}: unsupported format {manifest.Format}");
        if (manifest.Task is not ("binary" or "multiclass")) throw new InvalidDataException($"{path}: unknown task '{manifest.Task}'");
        if (manifest.NumLabels < 2 || (manifest.Task == "binary" && manifest.NumLabels != 2)) throw new InvalidDataException($"{path}: invalid class count {manifest.NumLabels}");
        if (manifest.KeyValues is { } kv && kv.Length != manifest.NumLabels) throw new InvalidDataException($"{path}: {kv.Length} key values for {manifest.NumLabels} classes");
        if (manifest.MaxSequenceLength <= 0 || manifest.ScoringBatchSize <= 0) throw new InvalidDataException($"{path}: invalid sequence length or batch size");
        return manifest;
    }

    /// <summary>Rebuilds the transformer, loading the base model and the adapter in <paramref name="folder"/>.</summary>
    public PeftTextClassificationTransformer Restore(string folder, ITextClassifierFactory factory, string? baseModelOverride, Action<string>? log)
    {
        var kind = Task == "binary" ? ClassificationKind.Binary : ClassificationKind.Multiclass;
        var columns = new TextClassificationColumns(kind, LabelColumn, Sentence1Column, Sentence2Column, ScoreColumn, PredictedLabelColumn, ProbabilityColumn);
        var reference = baseModelOverride is null ? BaseModel : new BaseModelReference { NameOrPath = baseModelOverride, WeightsSha256 = BaseModel.WeightsSha256, Quantization = BaseModel.Quantization };
        var backend = factory.Load(reference, folder, NumLabels, log);
        var encoder = new TextEncoder(backend.Tokenizer, MaxSequenceLength, backend.UsesTokenTypeIds, backend.PaddingId);
        var keyValues = KeyValues is null ? null : KeyValuesAnnotation.FromText(KeyValuesType ?? "Text", KeyValues);
        return PeftTextClassificationTransformer.Create(new ClassifierParts(backend, columns, NumLabels, keyValues, encoder, ScoringBatchSize, []));
    }
}
