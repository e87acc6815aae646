using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.QLora;

/// <summary>
/// Saves a 4-bit model once and reloads it fast: transformers' <c>save_pretrained</c> of a bitsandbytes-quantized
/// model (config.json with a <c>quantization_config</c>, model.safetensors with bitsandbytes-style keys), and the
/// matching <c>from_pretrained</c> that puts the stored codes and scales straight into <see cref="QuantizedLinear"/>
/// layers without re-quantizing anything.
/// </summary>
/// <remarks>
/// Loading validates before it builds: every 4-bit layer's quant state (JSON, block size, shape) is read and its
/// shape checked against the module tree built from config.json, then every piece (codes, scales, maps) is checked
/// by <see cref="BitsAndBytes4BitStateDict.FromArrays"/>, and only then are layers replaced; errors are
/// <see cref="ModelLoadException"/>s naming the weights file and the tensor at fault.
/// </remarks>
public static class QuantizedCheckpoint
{
    /// <summary>The weights file written by <see cref="SavePretrained"/>.</summary>
    public const string WeightsFileName = "model.safetensors";

    private const string QuantStateMarker = ".quant_state.bitsandbytes__";

    /// <summary>
    /// Writes <paramref name="model"/>'s base weights (4-bit layers as bitsandbytes arrays, everything else in its
    /// own dtype; adapters excluded, see remarks of the class) to one safetensors file, atomically.
    /// </summary>
    /// <returns>The names of the 4-bit layers written.</returns>
    public static IReadOnlyList<string> Save(Module model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(path);
        var writer = new SafeTensorsWriter(new Dictionary<string, string> { ["format"] = "pt" });
        var quantized = QuantizedStateDict.AddTo(writer, model);
        writer.Save(path);
        return quantized;
    }

    /// <summary>
    /// Writes <paramref name="directory"/>/config.json (the model's config.json plus transformers'
    /// <c>quantization_config</c> for bitsandbytes 4-bit) and <paramref name="directory"/>/model.safetensors, each
    /// atomically. The model must have been loaded from a folder (its config's <see cref="ModelConfig.SourcePath"/>).
    /// </summary>
    /// <exception cref="InvalidOperationException">The model has no 4-bit layer, or its config has no source file.</exception>
    public static IReadOnlyList<string> SavePretrained(PretrainedModel model, string directory)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(directory);
        var first = model.NamedModules().Select(m => m.Module).OfType<QuantizedLinear>().FirstOrDefault()
            ?? throw new InvalidOperationException("SavePretrained: the model has no QuantizedLinear layer; quantize it first (QuantizedModel.QuantizeLinearLayers).");
        string configPath = model.Config.SourcePath
            ?? throw new InvalidOperationException("SavePretrained: the model's config was built in code (no SourcePath), so there is no config.json to copy.");
        Directory.CreateDirectory(directory);
        var config = JsonNode.Parse(File.ReadAllText(configPath))?.AsObject()
            ?? throw new InvalidDataException($"{configPath}: not a JSON object.");
        var skipped = model.NamedModules()
            .Where(m => m.Module is Linear && m.Name.Length > 0 && !m.Name.Contains(".base_layer", StringComparison.Ordinal))
            .Select(m => m.Name[(m.Name.LastIndexOf('.') + 1)..]).Distinct().Order(StringComparer.Ordinal);
        config["quantization_config"] = new JsonObject
        {
            ["quant_method"] = "bitsandbytes",
            ["load_in_4bit"] = true,
            ["load_in_8bit"] = false,
            ["bnb_4bit_quant_type"] = first.Weight.QuantType.ToBitsAndBytesName(),
            ["bnb_4bit_use_double_quant"] = first.Weight.IsDoubleQuantized,
            ["bnb_4bit_compute_dtype"] = "float32",
            ["bnb_4bit_quant_storage"] = "uint8",
            ["llm_int8_skip_modules"] = new JsonArray([.. skipped.Select(s => (JsonNode)s)]),
        };
        string weights = Path.Combine(directory, WeightsFileName);
        var written = Save(model, weights);
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        return written;
    }

    /// <summary>
    /// Loads a model saved by <see cref="SavePretrained"/> (or any checkpoint whose 4-bit linear weights carry
    /// bitsandbytes quant states): builds the module tree from config.json, puts the stored 4-bit weights into
    /// <see cref="QuantizedLinear"/> layers as they are, and binds every other tensor as
    /// <see cref="PretrainedModel.Load"/> does (bfloat16 tables stay bfloat16). Returned in evaluation mode.
    /// </summary>
    /// <exception cref="ModelLoadException">A 4-bit layer's state is missing, corrupted, or disagrees with config.json.</exception>
    public static PretrainedModel LoadPretrained(string directory, ModelLoadOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        options ??= new ModelLoadOptions();
        var config = ModelConfig.Load(directory);
        if (options.NumLabels is int numLabels) config = config with { NumLabels = numLabels };
        var task = options.Task ?? ModelFactory.InferTask(config);
        var model = ModelFactory.Build(config, task, new Generator(options.Seed ^ 0x5DEECE66DUL));
        var source = Checkpoint.Open(directory);
        try
        {
            var quantizedKeys = LoadQuantizedLayers(model, source, config.SourcePath ?? "config.json");
            var rest = new FilteredTensorSource(source, quantizedKeys);
            model.LoadReport = WeightBinder.Bind(model, rest, options);
            // The binder makes float32 tensors trainable; a 4-bit layer's bias is frozen like its weight.
            foreach (var layer in model.NamedModules().Select(m => m.Module).OfType<QuantizedLinear>())
            {
                if (layer.Bias is { } bias) bias.RequiresGrad = false;
            }
        }
        catch
        {
            source.Dispose();
            throw;
        }
        model.Eval();
        return model;
    }

    /// <summary>
    /// Replaces each <see cref="Linear"/> of <paramref name="model"/> whose weight is stored 4-bit in
    /// <paramref name="source"/> by a <see cref="QuantizedLinear"/> over the stored codes (its bias stays the
    /// layer's bias parameter, to be bound with the other tensors).
    /// </summary>
    /// <returns>Every checkpoint key consumed (the weights' arrays and quant states).</returns>
    private static HashSet<string> LoadQuantizedLayers(PretrainedModel model, ITensorSource source, string configPath)
    {
        var stateKeys = source.Names.Where(n => n.Contains(QuantStateMarker, StringComparison.Ordinal)).ToList();
        var consumed = new HashSet<string>(StringComparer.Ordinal);
        var layers = new List<(string Module, Linear Layer, string Weight)>();
        var modules = model.NamedModules().ToDictionary(m => m.Name, m => m.Module, StringComparer.Ordinal);
        foreach (string key in stateKeys)
        {
            string weight = key[..key.IndexOf(QuantStateMarker, StringComparison.Ordinal)];
            if (!weight.EndsWith(".weight", StringComparison.Ordinal))
                throw new ModelLoadException(source.Path, key, $"{source.Path}: quant state '{key}' does not belong to a '.weight' tensor.");
            string module = weight[..^".weight".Length];
            var layer = modules.GetValueOrDefault(module) as Linear
                ?? throw new ModelLoadException(source.Path, weight,
                    $"{source.Path}: '{weight}' is stored in 4 bits but the {model.Config.ModelType} model described by {configPath} has no linear layer '{module}'.");
            layers.Add((module, layer, weight));
        }

        // Check every layer's stated shape against config.json before any array is read.
        var states = new Dictionary<string, QuantStateFields>(StringComparer.Ordinal);
        foreach (var (module, layer, weight) in layers)
        {
            string key = stateKeys.First(k => k.StartsWith(weight + QuantStateMarker, StringComparison.Ordinal));
            var state = Wrap(source, weight, () => QuantStateFields.Parse(key, source.GetTensor(key).Bytes.ToArray()));
            int[] expected = [layer.OutFeatures, layer.InFeatures];
            if (!state.Shape.SequenceEqual(expected))
                throw new ModelLoadException(source.Path, weight,
                    $"{source.Path}: '{weight}' has shape [{string.Join(", ", state.Shape)}] in {key} but the model built from {configPath} expects [{string.Join(", ", expected)}].");
            states[weight] = state;
        }

        var built = new List<(string Module, QuantizedLinear Layer)>(layers.Count);
        foreach (var (module, layer, weight) in layers)
        {
            var arrays = new Dictionary<string, QuantizedArray>(StringComparer.Ordinal);
            foreach (string name in source.Names)
            {
                if (name != weight && !name.StartsWith(weight + ".", StringComparison.Ordinal)) continue;
                arrays[name] = ToQuantizedArray(source, source.GetTensor(name));
                consumed.Add(name);
            }
            var tensor = Wrap(source, weight, () => BitsAndBytes4BitStateDict.FromArrays(arrays, weight));
            built.Add((module, new QuantizedLinear(tensor, layer.Bias)));
        }
        foreach (var (module, quantizedLayer) in built) model.ReplaceModule(module, quantizedLayer);
        return consumed;
    }

    private static QuantizedArray ToQuantizedArray(ITensorSource source, TensorView view)
    {
        var dtype = view.DType switch
        {
            CheckpointDType.U8 => QuantizedArrayDType.UInt8,
            CheckpointDType.F32 => QuantizedArrayDType.Float32,
            _ => throw new ModelLoadException(source.Path, view.Name,
                $"{source.Path}: '{view.Name}' is {view.DType.ToSafeTensorsName()}; 4-bit weight arrays are U8 or F32."),
        };
        return new QuantizedArray(view.Name, dtype, [.. view.Shape.Select(d => (long)d)], view.Bytes.ToArray());
    }

    /// <summary>Turns a validation failure of the quantization layer into a load error naming file and tensor.</summary>
    private static T Wrap<T>(ITensorSource source, string tensor, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (Exception e) when (e is InvalidDataException or ArgumentException)
        {
            throw new ModelLoadException(source.Path, tensor, $"{source.Path}: {e.Message}");
        }
    }
}
