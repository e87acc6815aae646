using System.IO.Compression;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft;

/// <summary>
/// Saves and loads whole ML.NET pipelines that contain PEFT text classifiers (any method). ML.NET's <c>Model.Save</c> cannot store
/// a third-party transformer (its save context is internal), so the chain is split around the PEFT transformers: each
/// run of ML.NET transformers is saved by <c>mlContext.Model.Save</c> into its own zip entry, and each PEFT classifier
/// as a Hugging Face PEFT adapter (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>, classification head
/// included as modules_to_save) plus <c>classifier.json</c> (task, columns, label key values, tokenization settings,
/// base model path or hub id and the SHA-256 of its weights files).
/// </summary>
/// <remarks>
/// The file is written atomically (temporary file, then rename). Loading rebuilds a
/// <see cref="TransformerChain{TLastTransformer}"/> of the same transformers whose predictions are bit-identical to the
/// saved pipeline's; the base model is loaded again from its folder or the hub cache and must have the same weights.
/// Transformer scopes are not preserved (every stage is restored with <see cref="TransformerScope.Everything"/>).
/// Archive entry names are validated (no absolute paths, "..", or backslashes), and only entries the manifest names
/// are read.
/// </remarks>
public static class PeftModelPersistence
{
    private const string ManifestEntry = "peft_pipeline.json";
    private const string InputSchemaEntry = "input_schema.zip";
    private static readonly string[] AdapterFiles = ["adapter_config.json", "adapter_model.safetensors", ClassifierManifest.FileName];

    /// <summary>Saves <paramref name="model"/> (a transformer or chain) and its input schema to <paramref name="path"/>.</summary>
    public static void Save(MLContext mlContext, ITransformer model, DataViewSchema? inputSchema, string path)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stages = Split(Flatten(model));
        string scratch = Directory.CreateTempSubdirectory("peft-save-").FullName;
        try
        {
            AtomicFile.Write(path, stream =>
            {
                using var zip = new ZipArchive(stream, ZipArchiveMode.Create, leaveOpen: true);
                var manifest = new PipelineManifest();
                WriteEntry(zip, InputSchemaEntry, s => mlContext.Model.Save(new TransformerChain<ITransformer>(), inputSchema, s));
                var schema = inputSchema;
                for (int i = 0; i < stages.Count; i++)
                {
                    string prefix = $"stages/{i:D3}/";
                    if (stages[i] is [PeftTextClassificationTransformer classifier])
                    {
                        string folder = Path.Combine(scratch, i.ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
                        Directory.CreateDirectory(folder);
                        classifier.SaveAdapter(folder);
                        ClassifierManifest.From(classifier).Save(folder);
                        foreach (string file in AdapterFiles) zip.CreateEntryFromFile(Path.Combine(folder, file), prefix + file, CompressionLevel.Fastest);
                        manifest.Stages.Add(new StageEntry { Kind = StageEntry.ClassifierKind, Entry = prefix });
                    }
                    else if (stages[i] is [EnsembleTextClassificationTransformer ensemble])
                    {
                        string folder = Path.Combine(scratch, i.ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
                        ensemble.SaveEnsemble(folder);
                        foreach (string file in EnsembleFiles.Files(folder)) zip.CreateEntryFromFile(Path.Combine(folder, file), prefix + file, CompressionLevel.Fastest);
                        manifest.Stages.Add(new StageEntry { Kind = StageEntry.EnsembleKind, Entry = prefix });
                    }
                    else if (stages[i] is [LaplaceCalibratorTransformer laplace])
                    {
                        // The posterior goes next to its classifier's adapter; loading binds it to the last classifier before it.
                        if (!ReferenceEquals(stages.Take(i).LastOrDefault(st => st is [LoraTextClassificationTransformer])?[0], laplace.Classifier))
                            throw new NotSupportedException("PeftModelPersistence: a LaplaceCalibratorTransformer must come after its own classifier, with no other LoRA classifier in between");
                        string folder = Path.Combine(scratch, i.ToString("D3", System.Globalization.CultureInfo.InvariantCulture));
                        laplace.SavePosterior(folder);
                        foreach (string file in LaplaceCalibratorPosteriorFiles.Files) zip.CreateEntryFromFile(Path.Combine(folder, file), prefix + file, CompressionLevel.Fastest);
                        manifest.Stages.Add(new StageEntry { Kind = StageEntry.LaplaceKind, Entry = prefix });
                    }
                    else
                    {
                        var chain = new TransformerChain<ITransformer>(stages[i].ToArray());
                        var stageSchema = schema;
                        WriteEntry(zip, prefix + "model.zip", s => mlContext.Model.Save(chain, stageSchema, s));
                        manifest.Stages.Add(new StageEntry { Kind = StageEntry.MLNetKind, Entry = prefix + "model.zip" });
                    }
                    if (schema is not null) schema = stages[i].Aggregate(schema, (s, t) => t.GetOutputSchema(s));
                }
                WriteEntry(zip, ManifestEntry, s => JsonSerializer.Serialize(s, manifest, PipelineManifest.Json));
            });
        }
        finally
        {
            Directory.Delete(scratch, recursive: true);
        }
    }

    /// <summary>
    /// Loads a pipeline written by <see cref="Save"/>. <paramref name="baseModel"/> overrides the stored base model
    /// location (e.g. after moving the folder); its weights must still match the stored SHA-256.
    /// </summary>
    public static ITransformer Load(MLContext mlContext, string path, out DataViewSchema? inputSchema, string? baseModel = null) =>
        Load(mlContext, path, out inputSchema, baseModel, PeftTextClassifierFactory.Instance, log: null);

    /// <summary>
    /// Builds a multiclass classifier from a standalone adapter in Hugging Face PEFT format (e.g. written by
    /// <see cref="PeftTextClassificationTransformer.SaveAdapter"/> or by Python PEFT with a sequence-classification head
    /// saved as modules_to_save). Columns, sequence length and base model come from <paramref name="options"/> (the base
    /// model defaults to the adapter's <c>base_model_name_or_path</c>); <paramref name="classNames"/> become the
    /// PredictedLabel key values, in class-index order.
    /// </summary>
    public static PeftTextClassificationTransformer LoadAdapter(string adapterFolder, TextClassificationTrainerOptions options, IReadOnlyList<string> classNames)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count < 2) throw new ArgumentException("a classifier needs at least two class names", nameof(classNames));
        return FromAdapter(adapterFolder, options, ClassificationKind.Multiclass, classNames.Count, KeyValuesAnnotation.FromText("Text", [.. classNames]), PeftTextClassifierFactory.Instance);
    }

    /// <summary>Builds a binary classifier (class 1 = true) from a standalone adapter in Hugging Face PEFT format.</summary>
    public static PeftTextClassificationTransformer LoadBinaryAdapter(string adapterFolder, TextClassificationTrainerOptions options) =>
        FromAdapter(adapterFolder, options, ClassificationKind.Binary, 2, null, PeftTextClassifierFactory.Instance);

    internal static PeftTextClassificationTransformer FromAdapter(string adapterFolder, TextClassificationTrainerOptions options, ClassificationKind kind,
        int numLabels, KeyValuesAnnotation? keyValues, ITextClassifierFactory factory)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterFolder);
        ArgumentNullException.ThrowIfNull(options);
        if (!Directory.Exists(adapterFolder)) throw new DirectoryNotFoundException($"adapter folder not found: {adapterFolder}");
        string? baseModel = options.BaseModel ?? AdapterBaseModel(adapterFolder)
            ?? throw new ArgumentException($"Options.BaseModel is not set and {adapterFolder}/adapter_config.json names no base_model_name_or_path", nameof(options));
        var columns = TextClassificationColumns.From(options, kind);
        var backend = factory.Load(new BaseModelReference { NameOrPath = baseModel }, adapterFolder, numLabels, options.Log);
        var encoder = new TextEncoder(backend.Tokenizer, options.MaxSequenceLength, backend.UsesTokenTypeIds, backend.PaddingId);
        return PeftTextClassificationTransformer.Create(new ClassifierParts(backend, columns, numLabels, keyValues, encoder, options.ScoringBatchSize, []));
    }

    internal static ITransformer Load(MLContext mlContext, string path, out DataViewSchema? inputSchema, string? baseModel, ITextClassifierFactory factory, Action<string>? log)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentException.ThrowIfNullOrEmpty(path);
        using var zip = ZipFile.OpenRead(path);
        foreach (var entry in zip.Entries) CheckEntryName(entry.FullName, path);
        var manifest = ReadManifest(zip, path);
        using (var schemaStream = OpenEntry(zip, InputSchemaEntry, path)) mlContext.Model.Load(schemaStream, out inputSchema);
        var transformers = new List<ITransformer>();
        foreach (var stage in manifest.Stages)
        {
            if (stage.Kind == StageEntry.MLNetKind)
            {
                using var stream = OpenEntry(zip, stage.Entry, path);
                transformers.AddRange(Flatten(mlContext.Model.Load(stream, out _)));
                continue;
            }
            if (stage.Kind == StageEntry.EnsembleKind)
            {
                transformers.Add(LoadEnsemble(zip, stage.Entry, path, baseModel, factory, log));
                continue;
            }
            if (stage.Kind is not (StageEntry.ClassifierKind or StageEntry.LegacyLoraKind or StageEntry.LaplaceKind)) throw new InvalidDataException($"{path}: unknown stage kind '{stage.Kind}'");
            bool isClassifier = stage.Kind != StageEntry.LaplaceKind;
            string folder = Directory.CreateTempSubdirectory("peft-load-").FullName;
            try
            {
                foreach (string file in isClassifier ? AdapterFiles : LaplaceCalibratorPosteriorFiles.Files)
                {
                    using var source = OpenEntry(zip, stage.Entry + file, path);
                    using var target = File.Create(Path.Combine(folder, file));
                    source.CopyTo(target);
                }
                if (isClassifier) transformers.Add(ClassifierManifest.Load(folder).Restore(folder, factory, baseModel, log));
                else
                {
                    var classifier = transformers.OfType<LoraTextClassificationTransformer>().LastOrDefault()
                        ?? throw new InvalidDataException($"{path}: the Laplace calibrator stage '{stage.Entry}' has no LoRA classifier before it");
                    transformers.Add(LaplaceCalibratorPosteriorFiles.Load(folder, classifier));
                }
            }
            finally
            {
                Directory.Delete(folder, recursive: true);
            }
        }
        return new TransformerChain<ITransformer>(transformers.ToArray());
    }

    /// <summary>Extracts every entry under <paramref name="prefix"/> (member adapters sit in sub-folders) and loads the ensemble.</summary>
    private static EnsembleTextClassificationTransformer LoadEnsemble(ZipArchive zip, string prefix, string path, string? baseModel, ITextClassifierFactory factory, Action<string>? log)
    {
        string folder = Directory.CreateTempSubdirectory("peft-load-").FullName;
        try
        {
            foreach (var entry in zip.Entries.Where(e => e.FullName.StartsWith(prefix, StringComparison.Ordinal) && !e.FullName.EndsWith('/')))
            {
                string target = Path.Combine(folder, entry.FullName[prefix.Length..]);
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                using var source = entry.Open();
                using var file = File.Create(target);
                source.CopyTo(file);
            }
            if (!File.Exists(Path.Combine(folder, EnsembleFiles.FileName))) throw new InvalidDataException($"{path}: the ensemble stage '{prefix}' has no {EnsembleFiles.FileName}");
            return EnsembleFiles.Load(folder, factory, baseModel, log);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>The leaf transformers of a (possibly nested) chain, in order.</summary>
    private static IEnumerable<ITransformer> Flatten(ITransformer model) =>
        model is IEnumerable<ITransformer> chain ? chain.SelectMany(Flatten) : [model];

    /// <summary>Groups consecutive ML.NET transformers; each PEFT classifier and Laplace calibrator is a stage of its own.</summary>
    private static List<List<ITransformer>> Split(IEnumerable<ITransformer> transformers)
    {
        var stages = new List<List<ITransformer>>();
        foreach (var t in transformers)
        {
            if (t is PeftTextClassificationTransformer or LaplaceCalibratorTransformer or EnsembleTextClassificationTransformer || stages.Count == 0
                || stages[^1] is [PeftTextClassificationTransformer] or [LaplaceCalibratorTransformer] or [EnsembleTextClassificationTransformer]) stages.Add([t]);
            else stages[^1].Add(t);
        }
        return stages;
    }

    private static void WriteEntry(ZipArchive zip, string name, Action<Stream> write)
    {
        using var stream = zip.CreateEntry(name, CompressionLevel.Fastest).Open();
        write(stream);
    }

    /// <summary>Opens an entry into a seekable copy (ML.NET's loader reads model zips that need seeking).</summary>
    private static MemoryStream OpenEntry(ZipArchive zip, string name, string path)
    {
        var entry = zip.GetEntry(name) ?? throw new InvalidDataException($"{path}: the entry '{name}' is missing");
        var copy = new MemoryStream();
        using (var stream = entry.Open()) stream.CopyTo(copy);
        copy.Position = 0;
        return copy;
    }

    private static PipelineManifest ReadManifest(ZipArchive zip, string path)
    {
        using var stream = OpenEntry(zip, ManifestEntry, path);
        PipelineManifest? manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<PipelineManifest>(stream, PipelineManifest.Json);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: {ManifestEntry} is not valid: {e.Message}", e);
        }
        if (manifest is null || manifest.Format != 1) throw new InvalidDataException($"{path}: {ManifestEntry} has an unsupported format");
        foreach (var stage in manifest.Stages) CheckEntryName(stage.Entry, path);
        return manifest;
    }

    private static void CheckEntryName(string name, string path)
    {
        if (name.Length == 0 || name.Contains('\\', StringComparison.Ordinal) || name.StartsWith('/') || name.Contains(':', StringComparison.Ordinal) ||
            name.Split('/').Any(part => part == ".."))
        {
            throw new InvalidDataException($"{path}: the archive entry name '{name}' is not allowed (absolute path, '..' or backslash)");
        }
    }

    private static string? AdapterBaseModel(string folder)
    {
        string config = Path.Combine(folder, "adapter_config.json");
        if (!File.Exists(config)) return null;
        using var document = JsonDocument.Parse(File.ReadAllText(config));
        return document.RootElement.TryGetProperty("base_model_name_or_path", out var value) && value.ValueKind == JsonValueKind.String ? value.GetString() : null;
    }

    private sealed class PipelineManifest
    {
        public static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

        public int Format { get; set; } = 1;

        public List<StageEntry> Stages { get; set; } = [];
    }

    private sealed class StageEntry
    {
        public const string MLNetKind = "mlnet";
        public const string ClassifierKind = "peft_text_classifier";

        /// <summary>What files of the first release called the same stage (LoRA was the only method then).</summary>
        public const string LegacyLoraKind = "lora_text_classifier";

        public const string LaplaceKind = "laplace_calibrator";

        public const string EnsembleKind = "peft_ensemble";

        public string Kind { get; set; } = "";

        public string Entry { get; set; } = "";
    }
}
