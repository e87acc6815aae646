using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>Saving and loading adapters in Hugging Face PEFT's format.</summary>
public sealed partial class PeftModel
{
    /// <summary>The file name PEFT uses for adapter weights.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>The prefix of every saved key: PEFT's PeftModel → LoraModel → model attribute path.</summary>
    public const string KeyPrefix = "base_model.model.";

    /// <summary>
    /// One adapter's tensors under the keys PEFT saves them with (<c>get_peft_model_state_dict</c>):
    /// "base_model.model.&lt;layer path&gt;.lora_A.weight" / ".lora_B.weight" (adapter name removed), trained biases
    /// under their in-memory names ("…q_proj.base_layer.bias"), and modules_to_save under the module's own path
    /// ("base_model.model.classifier.weight"); the method's config may choose other keys (<see cref="PeftConfig.SavedKey"/>:
    /// prompt learning's "prompt_embeddings"). The tensors are the live ones (not copies), except a reparameterised
    /// prompt encoder's table, which is computed.
    /// </summary>
    public OrderedDictionary<string, Tensor> GetAdapterStateDict(string adapterName = "default")
    {
        CheckUsable();
        if (!configs.TryGetValue(adapterName, out var config)) throw UnknownAdapter(adapterName);
        var result = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (path, layer) in TunerLayers())
        {
            if (!layer.AdapterNames.Contains(adapterName)) continue;
            foreach (var (suffix, tensor) in layer.AdapterTensors(adapterName)) result.Add(config.SavedKey(path, suffix), tensor);
        }
        foreach (var name in config.ExtraTrainableParameterNames(Model)) result.TryAdd(config.ModulesKeyPrefix + name, Model.GetParameter(name));
        foreach (var (name, tensor) in modulesToSave.AdapterTensors(adapterName)) result.TryAdd(config.ModulesKeyPrefix + name, tensor);
        foreach (var (key, tensor) in config.SharedAdapterTensors(this, adapterName)) result.Add(key, tensor);
        return result;
    }

    /// <summary>
    /// Writes each adapter (default: all) as PEFT's <c>save_pretrained</c> does: adapter_config.json (with
    /// inference_mode true) and adapter_model.safetensors (float32, metadata {"format":"pt"}), "default" in
    /// <paramref name="directory"/> itself and every other adapter in a sub-folder named after it. Files are written
    /// atomically (temporary file + rename).
    /// </summary>
    public void SavePretrained(string directory, IReadOnlyList<string>? selectedAdapters = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        CheckUsable();
        if (File.Exists(directory)) throw new IOException($"'{directory}' is a file; SavePretrained needs a directory");
        var names = selectedAdapters ?? adapterOrder;
        foreach (var name in names)
        {
            if (!configs.ContainsKey(name)) throw UnknownAdapter(name);
        }
        foreach (var name in names)
        {
            string folder = name == "default" ? directory : Path.Combine(directory, name);
            Directory.CreateDirectory(folder);
            var writer = new SafeTensorsWriter();
            foreach (var (key, tensor) in GetAdapterStateDict(name))
            {
                var values = tensor.DType == DType.Float32 ? tensor.ToArray() : tensor.To(DType.Float32).ToArray();
                writer.Add(key, values, tensor.Shape);
            }
            writer.Save(Path.Combine(folder, WeightsFileName));
            var config = configs[name].Clone();
            config.InferenceMode = true;
            config.Save(folder);
        }
    }

    /// <summary>
    /// Loads an adapter saved by <see cref="SavePretrained"/> or by Hugging Face PEFT (PEFT's
    /// <c>PeftModel.from_pretrained</c>): reads adapter_config.json, injects the adapter into <paramref name="model"/>,
    /// then fills its weights from adapter_model.safetensors after checking every key and shape. Frozen unless
    /// <paramref name="isTrainable"/>.
    /// </summary>
    /// <exception cref="PeftConfigException">The files are missing or do not fit the model (keys, shapes); the model is restored.</exception>
    public static PeftModel FromPretrained(Module model, string directory, string adapterName = "default", bool isTrainable = false, Generator? generator = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(directory);
        var config = PeftConfig.Load(directory);
        config.InferenceMode = !isTrainable;
        string weights = RequireWeightsFile(directory);
        var trainable = model.Parameters().Select(p => (Parameter: p, p.RequiresGrad)).ToList();
        var peft = Inject(model, config, adapterName, generator);
        try
        {
            peft.LoadAdapterWeights(adapterName, weights);
        }
        catch
        {
            peft.Rollback();
            foreach (var (parameter, requiresGrad) in trainable) parameter.RequiresGrad = requiresGrad;
            throw;
        }
        return peft;
    }

    /// <summary>
    /// Adds an adapter saved in PEFT format under <paramref name="adapterName"/> (PEFT's <c>load_adapter</c>); it is
    /// not activated. Frozen unless <paramref name="isTrainable"/>.
    /// </summary>
    public void LoadAdapter(string directory, string adapterName, bool isTrainable = false)
    {
        ArgumentNullException.ThrowIfNull(directory);
        CheckUsable();
        var config = PeftConfig.Load(directory);
        config.InferenceMode = !isTrainable;
        string weights = RequireWeightsFile(directory);
        AddAdapter(adapterName, config);
        LoadAdapterWeights(adapterName, weights);
    }

    /// <summary>
    /// Copies tensors from a PEFT adapter_model.safetensors into adapter <paramref name="adapterName"/>. Every key
    /// and shape is checked before anything is written: keys the adapter does not have, adapter tensors absent from the
    /// file and shape mismatches are reported together, naming the file, keys and both shapes. F16/BF16/F64 files are
    /// widened to float32.
    /// </summary>
    public void LoadAdapterWeights(string adapterName, string weightsFile)
    {
        ArgumentNullException.ThrowIfNull(weightsFile);
        if (configs.TryGetValue(adapterName, out var config)) config.PrepareForLoading(Model, adapterName);
        var expected = GetAdapterStateDict(adapterName);
        using var file = OpenWeights(weightsFile);
        var problems = new List<string>();
        foreach (var name in file.Names.Where(n => !expected.ContainsKey(n)))
            problems.Add($"unexpected key '{name}'{Hint(name)}");
        foreach (var name in expected.Keys.Where(k => !file.Contains(k) && config?.MayBeMissingOnLoad(k) != true))
            problems.Add($"missing key '{name}'");
        foreach (var (name, tensor) in expected)
        {
            if (!file.TryGetTensor(name, out var view)) continue;
            if (!view.Shape.AsSpan().SequenceEqual(tensor.Shape))
                problems.Add($"'{name}' has shape [{string.Join(", ", view.Shape)}] in the file but [{string.Join(", ", tensor.ShapeArray())}] in the model");
            else if (view.DType is not (CheckpointDType.F32 or CheckpointDType.F16 or CheckpointDType.BF16 or CheckpointDType.F64))
                problems.Add($"'{name}' is {view.DType.ToSafeTensorsName()}; adapter weights must be floating point");
            else if (tensor.DType != DType.Float32 || !tensor.IsContiguous)
                problems.Add($"'{name}' is held by the model as {tensor}; only contiguous float32 tensors can be loaded into");
        }
        if (problems.Count > 0)
            throw new PeftConfigException($"{weightsFile} does not fit adapter '{adapterName}' of this model:\n  " + string.Join("\n  ", problems));

        using (Autograd.NoGrad())
        {
            foreach (var (name, tensor) in expected)
            {
                if (file.Contains(name)) file.GetTensor(name).CopyToFloat32(tensor.AsSpan<float>());
            }
        }
    }

    private static string RequireWeightsFile(string directory)
    {
        string path = Path.Combine(directory, WeightsFileName);
        if (File.Exists(path)) return path;
        if (File.Exists(Path.Combine(directory, "adapter_model.bin")))
            throw new PeftConfigException($"{directory} holds adapter_model.bin (pickle) only; save the adapter with safe_serialization=True (adapter_model.safetensors)");
        throw new PeftConfigException($"adapter weights '{path}' do not exist");
    }

    private static SafeTensorsFile OpenWeights(string path)
    {
        try
        {
            return SafeTensorsFile.Open(path);
        }
        catch (FileNotFoundException e)
        {
            throw new PeftConfigException($"adapter weights '{path}' do not exist", e);
        }
    }

    private static string Hint(string key) =>
        !key.StartsWith(KeyPrefix, StringComparison.Ordinal) ? $" (PEFT keys start with '{KeyPrefix}')"
        : key.Contains("lora_magnitude_vector", StringComparison.Ordinal) ? " (a DoRA magnitude, but adapter_config.json does not set use_dora: true)"
        : key.Contains("lora_embedding_", StringComparison.Ordinal) ? " (LoRA on embeddings is not supported)"
        : System.Text.RegularExpressions.Regex.IsMatch(key, @"\.lora_[AB]\.[^.]+\.weight$") ? " (PEFT files carry no adapter name: '…lora_A.weight')"
        : "";

    /// <summary>Undoes a failed FromPretrained: original modules_to_save values and base layers back in place.</summary>
    private void Rollback()
    {
        modulesToSave.Activate(Model, null, trainable: false);
        RemoveAdapterLayers();
    }
}
