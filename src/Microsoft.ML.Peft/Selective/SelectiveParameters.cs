using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// Which of a model's own parameters a <see cref="SelectiveConfig"/> trains, and the checks made before training
/// them. Parameters inside modules_to_save are never selected: those modules are trained through their copies.
/// </summary>
internal static class SelectiveParameters
{
    private static readonly Regex AnyLayerIndex = new(@"(?:^|\.)[^.]+\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>Dotted names of the parameters <paramref name="config"/> trains (deterministic, model order).</summary>
    public static IReadOnlyList<string> Select(Module model, SelectiveConfig config)
    {
        var saved = config.ModulesToSave ?? [];
        var parameters = model.NamedParameters().Select(p => p.Name).Where(n => !saved.Any(m => TargetMatching.IsInside(n, m))).ToList();
        return config.Method switch
        {
            SelectiveMethod.BitFit => parameters.Where(n => n == "bias" || n.EndsWith(".bias", StringComparison.Ordinal)).ToList(),
            SelectiveMethod.LayerNormTuning => NormParameters(model, config, parameters),
            SelectiveMethod.HeadOnly => [],
            SelectiveMethod.LastLayers => LastLayerParameters(config, parameters, out _),
            SelectiveMethod.Full => parameters,
            _ => throw new ArgumentOutOfRangeException(nameof(config), config.Method, "unknown selective method"),
        };
    }

    /// <summary>
    /// Checks that the method applies to <paramref name="model"/> (it selects something; every selected tensor is
    /// float32), copies selected tensors that live in read-only checkpoint mappings into engine memory so they can
    /// be trained and loaded into, and returns the dotted names of the modules owning them.
    /// </summary>
    public static IReadOnlyList<string> Apply(Module model, SelectiveConfig config)
    {
        config.Validate();
        if (config.Method == SelectiveMethod.HeadOnly) return CheckHead(model, config);
        var selected = Select(model, config);
        if (selected.Count == 0) throw new PeftConfigException($"{config.PeftType} selects no parameter of the model: {Reason(model, config)}");
        if (config.Method == SelectiveMethod.LastLayers)
        {
            _ = LastLayerParameters(config, model.NamedParameters().Select(p => p.Name).ToList(), out int layerCount);
            if (config.NumTrainableLayers > layerCount)
                throw new PeftConfigException($"LAST_N_LAYERS: num_trainable_layers is {config.NumTrainableLayers} but the model has only {layerCount} layers");
        }
        var notFloat = selected.Where(n => model.GetParameter(n).DType != DType.Float32).ToList();
        if (notFloat.Count > 0)
            throw new PeftConfigException($"{config.PeftType}: parameters [{string.Join(", ", notFloat.Take(8))}{(notFloat.Count > 8 ? ", ..." : "")}] are {DTypeInfo.Name(model.GetParameter(notFloat[0]).DType)}; only float32 parameters can be trained. Load the model in float32.");
        foreach (var name in selected)
        {
            var tensor = model.GetParameter(name);
            if (tensor.Storage is not ExternalStorage && tensor.IsContiguous) continue;
            Tensor copy;
            using (TensorScope.Untracked())
            using (Autograd.NoGrad()) copy = tensor.Clone();
            model.ReplaceParameter(name, copy);
        }
        return selected.Select(n => n.Contains('.', StringComparison.Ordinal) ? n[..n.LastIndexOf('.')] : "").Distinct().ToList();
    }

    private static List<string> NormParameters(Module model, SelectiveConfig config, List<string> parameters)
    {
        var norms = model.NamedModules()
            .Where(m => m.Name.Length > 0 && (config.TargetModules is { } t
                ? TargetMatching.Check(m.Name, t) == TargetMatch.Targeted
                : m.Module is LayerNorm or RMSNorm))
            .Select(m => m.Name)
            .ToHashSet(StringComparer.Ordinal);
        return parameters.Where(n => n.Contains('.', StringComparison.Ordinal) && norms.Contains(n[..n.LastIndexOf('.')])).ToList();
    }

    private static List<string> LastLayerParameters(SelectiveConfig config, List<string> parameters, out int layerCount)
    {
        var indexed = parameters.Select(n => (Name: n, Index: LayerIndex(n, config.LayersPattern))).Where(p => p.Index is not null).ToList();
        layerCount = indexed.Count == 0 ? 0 : indexed.Max(p => p.Index!.Value) + 1;
        int first = layerCount - config.NumTrainableLayers;
        var chosen = config.LayersToTransform is { Count: > 0 } list ? list.ToHashSet() : Enumerable.Range(Math.Max(first, 0), layerCount - Math.Max(first, 0)).ToHashSet();
        return indexed.Where(p => chosen.Contains(p.Index!.Value)).Select(p => p.Name).ToList();
    }

    /// <summary>The index after "&lt;layers_pattern&gt;." (or the first "&lt;name&gt;.&lt;digits&gt;.") in a parameter name.</summary>
    internal static int? LayerIndex(string name, IList<string>? layersPattern)
    {
        Match? m = null;
        if (layersPattern is not { Count: > 0 })
        {
            m = AnyLayerIndex.Match(name);
        }
        else
        {
            foreach (var pattern in layersPattern)
            {
                m = Regex.Match(name, $@"(?:^|\.){Regex.Escape(pattern)}\.(\d+)\.", RegexOptions.CultureInvariant);
                if (m.Success) break;
            }
        }
        return m is { Success: true } ? int.Parse(m.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture) : null;
    }

    private static string[] CheckHead(Module model, SelectiveConfig config)
    {
        var selector = ModuleSelector.FromNames(config.ModulesToSave!);
        var matched = model.NamedModules().Where(m => m.Name.Length > 0 && selector.Matches(m.Name)).Select(m => m.Name).ToArray();
        if (matched.Length == 0)
            throw new PeftConfigException($"HEAD_ONLY: modules_to_save {selector} matched no module of the model. Top-level modules: {string.Join(", ", model.NamedChildren().Select(c => c.Name))}; linear layers: {string.Join(", ", model.NamedModules().Where(m => m.Module is LinearLayer).Select(m => m.Name))}");
        return matched;
    }

    private static string Reason(Module model, SelectiveConfig config)
    {
        var modules = model.NamedModules().Where(m => m.Name.Length > 0).Select(m => $"{m.Name} ({m.Module.GetType().Name})").ToList();
        string available = "modules in the model: " + (modules.Count == 0 ? "(none)" : string.Join(", ", modules));
        return config.Method switch
        {
            SelectiveMethod.BitFit => $"it has no bias parameters; {available}",
            SelectiveMethod.LayerNormTuning when config.TargetModules is { } t => $"target_modules {t} matched no module with parameters; {available}",
            SelectiveMethod.LayerNormTuning => $"it has no LayerNorm or RMSNorm modules; {available}",
            SelectiveMethod.LastLayers => LastLayersReason(model, config, available),
            _ => $"it has no trainable parameters; {available}",
        };
    }

    private static string LastLayersReason(Module model, SelectiveConfig config, string available)
    {
        var parameters = model.NamedParameters().Select(p => p.Name).ToList();
        _ = LastLayerParameters(config, parameters, out int count);
        string pattern = config.LayersPattern is { Count: > 0 } p ? $"layers_pattern [{string.Join(", ", p)}]" : "any '<name>.<index>.'";
        return count == 0
            ? $"no parameter name carries a layer index ({pattern}); {available}"
            : $"the model has layers 0..{count - 1} but layers_to_transform is [{string.Join(", ", config.LayersToTransform ?? [])}]";
    }
}
