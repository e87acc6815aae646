using System.Text.Json;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// Settings shared by every PEFT method (PEFT's <c>PeftConfig</c>), and the adapter_config.json format. A concrete
/// method (e.g. <see cref="LoraConfig"/>) adds its own fields and knows how to put its layers into a model.
/// </summary>
/// <remarks>
/// JSON mapping (PEFT key → property): peft_type → <see cref="PeftType"/>, task_type → <see cref="TaskType"/>,
/// base_model_name_or_path → <see cref="BaseModelNameOrPath"/>, revision → <see cref="Revision"/>,
/// inference_mode → <see cref="InferenceMode"/>, modules_to_save → <see cref="ModulesToSave"/>. Files are written as
/// PEFT writes them (json.dumps with indent 2 and sorted keys); keys this library does not model are kept and written
/// back unchanged, and keys for PEFT features that are not implemented must hold their defaults.
/// </remarks>
public abstract class PeftConfig
{
    /// <summary>The file name PEFT uses for the configuration.</summary>
    public const string ConfigFileName = "adapter_config.json";

    /// <summary>PEFT's task types (task_type values).</summary>
    public static IReadOnlyList<string> KnownTaskTypes { get; } =
        ["SEQ_CLS", "SEQ_2_SEQ_LM", "CAUSAL_LM", "TOKEN_CLS", "QUESTION_ANS", "FEATURE_EXTRACTION"];

    private Dictionary<string, object?> extraFields = new(StringComparer.Ordinal);

    /// <summary>PEFT's method name as written in peft_type ("LORA").</summary>
    public abstract string PeftType { get; }

    /// <summary>task_type: one of <see cref="KnownTaskTypes"/> or null. "SEQ_CLS" makes "all-linear" skip the classifier head.</summary>
    public string? TaskType { get; set; }

    /// <summary>base_model_name_or_path: the base model's folder or hub id (informational; filled in by the caller).</summary>
    public string? BaseModelNameOrPath { get; set; }

    /// <summary>revision: the base model's revision, or null.</summary>
    public string? Revision { get; set; }

    /// <summary>inference_mode: adapters are loaded frozen. Saved files always say true, as PEFT's do.</summary>
    public bool InferenceMode { get; set; }

    /// <summary>
    /// modules_to_save: modules (names or "." suffixes) that are trained in full and saved with the adapter, e.g. a
    /// classification head ("classifier", "score"). Each adapter gets its own trainable copy.
    /// </summary>
    public IList<string>? ModulesToSave { get; set; }

    /// <summary>Fields read from a file that this library does not model, written back unchanged.</summary>
    public IReadOnlyDictionary<string, object?> ExtraFields => extraFields;

    /// <summary>Checks the settings, throwing <see cref="PeftConfigException"/> naming the field at fault.</summary>
    public virtual void Validate()
    {
        if (TaskType is not null && !KnownTaskTypes.Contains(TaskType))
            throw new PeftConfigException($"task_type '{TaskType}' is not one of {string.Join(", ", KnownTaskTypes)}");
        if (ModulesToSave is not null && ModulesToSave.Any(string.IsNullOrEmpty))
            throw new PeftConfigException("modules_to_save entries must be non-empty module names");
    }

    /// <summary>The configuration as adapter_config.json text (PEFT's exact layout: sorted keys, indent 2).</summary>
    public string ToJson()
    {
        Validate();
        var fields = new Dictionary<string, object?>(extraFields, StringComparer.Ordinal)
        {
            ["peft_type"] = PeftType,
            ["task_type"] = TaskType,
            ["base_model_name_or_path"] = BaseModelNameOrPath,
            ["revision"] = Revision,
            ["inference_mode"] = InferenceMode,
            ["modules_to_save"] = ModulesToSave?.Cast<object?>().ToList(),
        };
        fields.TryAdd("auto_mapping", null);
        WriteFields(fields);
        return PythonJson.Serialize(fields);
    }

    /// <summary>Writes adapter_config.json into <paramref name="directory"/> atomically.</summary>
    public void Save(string directory)
    {
        ArgumentNullException.ThrowIfNull(directory);
        AtomicFile.WriteAllText(Path.Combine(directory, ConfigFileName), ToJson());
    }

    /// <summary>A deep copy (through the JSON form, so extra fields are copied too).</summary>
    public PeftConfig Clone()
    {
        var clone = FromJson(ToJson(), "<clone>");
        CopyUnsavedSettings(clone);
        return clone;
    }

    /// <summary>Copies settings that adapter_config.json does not hold (e.g. prompt init token ids) into a clone of this config.</summary>
    private protected virtual void CopyUnsavedSettings(PeftConfig clone)
    {
    }

    /// <summary>
    /// Reads adapter_config.json from a folder (or the file itself). Throws <see cref="PeftConfigException"/> naming
    /// the file when it is missing, malformed, of an unknown peft_type, or uses an unsupported feature.
    /// </summary>
    public static PeftConfig Load(string folderOrFile)
    {
        ArgumentNullException.ThrowIfNull(folderOrFile);
        string path = Directory.Exists(folderOrFile) ? Path.Combine(folderOrFile, ConfigFileName) : folderOrFile;
        if (!File.Exists(path))
            throw new PeftConfigException($"adapter configuration not found: '{path}' is neither a folder holding {ConfigFileName} nor a file");
        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses adapter_config.json text; <paramref name="source"/> names it in error messages.</summary>
    public static PeftConfig FromJson(string json, string source = "<json>")
    {
        ArgumentNullException.ThrowIfNull(json);
        Dictionary<string, object?> root;
        try
        {
            using var doc = JsonDocument.Parse(json);
            root = PythonJson.Parse(doc.RootElement) as Dictionary<string, object?>
                ?? throw new PeftConfigException($"{source}: the adapter configuration must be a JSON object");
        }
        catch (JsonException e)
        {
            throw new PeftConfigException($"{source}: not valid JSON: {e.Message}", e);
        }

        var fields = new ConfigFields(root, source);
        string peftType = fields.String("peft_type") ?? throw new PeftConfigException($"{source}: 'peft_type' is missing");
        PeftConfig config = peftType switch
        {
            "LORA" => new LoraConfig(),
            "IA3" => new IA3.IA3Config(),
            "PROMPT_TUNING" => new PromptTuning.PromptTuningConfig(),
            "PREFIX_TUNING" => new PrefixTuning.PrefixTuningConfig(),
            "P_TUNING" => new PTuning.PromptEncoderConfig(),
            "ADAPTION_PROMPT" => new AdaptionPrompt.AdaptionPromptConfig(),
            "ADALORA" => new AdaLora.AdaLoraConfig(),
            "VERA" => new Vera.VeraConfig(),
            "LOHA" => new Lycoris.LoHaConfig(),
            "LOKR" => new Lycoris.LoKrConfig(),
            "BOTTLENECK_ADAPTER" => new Adapters.BottleneckAdapterConfig(),
            "ADAPTER_FUSION" => new Adapters.AdapterFusionConfig(),
            "FAR" => new Selective.FarConfig(),
            "PAFI" => new Selective.PafiConfig(),
            "DIFF_PRUNING" => new Selective.DiffPruningConfig(),
            "REFT" => new Reft.ReftConfig(),
            _ => Selective.SelectiveConfig.ForPeftType(peftType)
                ?? throw new PeftConfigException($"{source}: peft_type '{peftType}' is not supported (supported: LORA, IA3, PROMPT_TUNING, PREFIX_TUNING, P_TUNING, ADAPTION_PROMPT, ADALORA, VERA, LOHA, LOKR, BOTTLENECK_ADAPTER, ADAPTER_FUSION, FAR, PAFI, DIFF_PRUNING, BITFIT, LAYERNORM_TUNING, HEAD_ONLY, LAST_N_LAYERS, FULL_FINETUNING)"),
        };
        config.TaskType = fields.String("task_type");
        config.BaseModelNameOrPath = fields.String("base_model_name_or_path");
        config.Revision = fields.String("revision");
        config.InferenceMode = fields.Bool("inference_mode", false);
        config.ModulesToSave = fields.StringOrList("modules_to_save") switch
        {
            (null, null) => null,
            (string single, _) => [single],
            (_, var list) => list,
        };
        fields.Take("peft_version"); // written by newer PEFT releases; the writer's version is not ours to repeat
        try
        {
            config.ReadFields(fields);
            config.extraFields = new Dictionary<string, object?>(fields.Remaining, StringComparer.Ordinal);
            config.Validate();
        }
        catch (PeftConfigException e) when (!e.Message.StartsWith(source + ": ", StringComparison.Ordinal))
        {
            throw new PeftConfigException($"{source}: {e.Message}", e);
        }
        return config;
    }

    /// <summary>Adds the method's own keys (snake_case, PEFT defaults) to <paramref name="fields"/>.</summary>
    private protected abstract void WriteFields(Dictionary<string, object?> fields);

    /// <summary>Consumes the method's own keys.</summary>
    private protected abstract void ReadFields(ConfigFields fields);

    /// <summary>
    /// Puts this method's layers for <paramref name="adapterName"/> into <paramref name="model"/> (wrapping targets,
    /// or adding the adapter to layers that already carry one) and returns the dotted names of the adapted modules.
    /// New adapter parameters are trainable; freezing is the caller's business.
    /// </summary>
    private protected abstract IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator);

    internal IReadOnlyList<string> Inject(Module model, string adapterName, Generator generator) => InjectInto(model, adapterName, generator);

    /// <summary>
    /// Base-model parameters (dotted names) that this config trains and saves besides adapter tensors, e.g. biases for
    /// LoRA's bias = "all" / "lora_only". Empty by default.
    /// </summary>
    internal virtual IEnumerable<string> ExtraTrainableParameterNames(Module model) => [];

    /// <summary>
    /// The key PEFT saves an adapter tensor under, from its tuner layer's module path and the suffix the layer reports
    /// (default "base_model.model.&lt;path&gt;.&lt;suffix&gt;"; prompt learning saves the top-level "prompt_embeddings").
    /// </summary>
    internal virtual string SavedKey(string layerPath, string suffix) => PeftModel.KeyPrefix + layerPath + "." + suffix;

    /// <summary>
    /// Tensors of adapter <paramref name="adapterName"/> that belong to no single layer, under the keys PEFT saves them
    /// with (VeRA's shared projections "base_model.vera_A" / "base_model.vera_B"). Empty by default.
    /// </summary>
    internal virtual IEnumerable<(string Key, Tensor Tensor)> SharedAdapterTensors(PeftModel model, string adapterName) => [];

    /// <summary>
    /// Whether a file may lack <paramref name="key"/> of the adapter's state dict (the tensor then keeps its
    /// initialisation: VeRA projections regenerated from their key, as files written without them expect). False by default.
    /// </summary>
    internal virtual bool MayBeMissingOnLoad(string key) => false;

    /// <summary>The prefix of saved modules_to_save and extra trainable tensors (PEFT's attribute path to the model).</summary>
    internal virtual string ModulesKeyPrefix => PeftModel.KeyPrefix;

    /// <summary>
    /// Called before saved weights are copied into adapter <paramref name="adapterName"/>: prompt encoders switch to the
    /// lookup table PEFT saves (their reparameterisation is dropped after training). Nothing by default.
    /// </summary>
    internal virtual void PrepareForLoading(Module model, string adapterName)
    {
    }

    /// <summary>
    /// Why <see cref="PeftModel.DisableAdapters"/> cannot give back the base model under this config (it trains the
    /// base model's own tensors in place), or null when it can.
    /// </summary>
    internal virtual string? CannotDisableReason => null;
}
