using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// Puts LoRA layers into a module tree as PEFT's <c>LoraModel</c> does: resolves "all-linear", matches names with
/// <see cref="TargetMatching"/>, picks per-layer rank/alpha from rank_pattern/alpha_pattern, and replaces each targeted
/// <see cref="LinearLayer"/> by a <see cref="LoraLinear"/> (or adds the adapter to an existing one).
/// </summary>
internal static class LoraInjector
{
    /// <summary>
    /// Output layers "all-linear" leaves alone, by the dotted names Hugging Face models give them: PEFT skips
    /// <c>get_output_embeddings()</c> (the LM head: "lm_head" in Llama/GPT-2/Qwen2, "embed_out" in GPT-NeoX,
    /// "cls.predictions.decoder" in BERT's MLM head).
    /// </summary>
    private static readonly string[] OutputLayerNames = ["lm_head", "embed_out", "cls.predictions.decoder"];

    /// <summary>Classification heads "all-linear" skips for task_type SEQ_CLS when there is no output layer (PEFT's SEQ_CLS_HEAD_NAMES).</summary>
    private static readonly string[] SequenceClassificationHeadNames = ["score", "classifier"];

    public static IReadOnlyList<string> Inject(Module model, LoraConfig config, string adapterName, Generator generator)
    {
        config.Validate();
        var targeted = FindTargets(model, new TargetSpec("LoRA", config.TargetModules, config.ExcludeModules, config.ModulesToSave, config.LayersToTransform, config.LayersPattern, config.TaskType));
        if (config.UseDora)
        {
            // Checked before any layer is wrapped, so a refused config leaves the model untouched.
            var dense = targeted.Where(t => (t.Layer is LoraLinear l ? l.Base : t.Layer) is not (Linear or Conv1D)).Select(t => $"{t.Name} ({(t.Layer is LoraLinear l ? l.Base : t.Layer).GetType().Name})").ToList();
            if (dense.Count > 0)
                throw new PeftConfigException($"use_dora needs dense Linear/Conv1D base weights; these targets have none: {string.Join(", ", dense)}. Dequantize them first.");
        }
        foreach (var (name, linear) in targeted)
        {
            string? rankKey = TargetMatching.PatternKey(config.RankPattern.Keys, name);
            string? alphaKey = TargetMatching.PatternKey(config.AlphaPattern.Keys, name);
            int rank = rankKey is null ? config.Rank : config.RankPattern[rankKey];
            double alpha = alphaKey is null ? config.Alpha : config.AlphaPattern[alphaKey];
            var layer = linear as LoraLinear;
            if (layer is null)
            {
                // PEFT's _create_new_module: a Conv1D target forces fan_in_fan_out = True, a Linear one False (with a
                // warning there). The layout itself comes from the layer; this keeps the saved config PEFT's.
                config.FanInFanOut = linear is Conv1D;
                layer = new LoraLinear(linear);
                Replace(model, name, layer, "LoRA");
            }
            layer.UpdateLayer(adapterName, rank, alpha, config.Dropout, config.UseRsLora, config.InitLoraWeights, generator,
                config.UseDora, config.UseMixer ? config.MixerInit : null);
        }
        return targeted.Select(t => t.Name).ToList();
    }

    /// <summary>Dotted names of the base parameters that bias = "all" / "lora_only" trains and saves.</summary>
    public static IEnumerable<string> TrainedBiasNames(Module model, LoraConfig config)
    {
        if (config.Bias == LoraBias.None) return [];
        var saved = config.ModulesToSave ?? [];
        if (config.Bias == LoraBias.All)
        {
            // PEFT: every parameter whose name contains "bias" (modules_to_save copies are handled separately).
            return model.NamedParameters()
                .Select(p => p.Name)
                .Where(n => n.Contains("bias", StringComparison.Ordinal) && !saved.Any(m => TargetMatching.IsInside(n, m)))
                .ToList();
        }
        var parameters = model.NamedParameters().Select(p => p.Name).ToHashSet(StringComparer.Ordinal);
        return model.NamedModules()
            .Where(m => m.Module is LoraLinear)
            .Select(m => m.Name + ".base_layer.bias")
            .Where(parameters.Contains)
            .ToList();
    }

    /// <summary>
    /// The linear layers a LoRA-family config targets, in model order (PEFT's target resolution: "all-linear",
    /// target/exclude matching, layers_to_transform), each either a plain <see cref="LinearLayer"/> or a tuner layer
    /// of the caller's kind that already wraps one. Throws naming the model's linear layers when nothing matches or a
    /// match is not linear. Shared by LoRA, AdaLoRA and VeRA.
    /// </summary>
    internal static List<(string Name, LinearLayer Layer)> FindTargets(Module model, TargetSpec spec)
    {
        if (spec.TargetModules is null)
            throw new PeftConfigException($"{spec.Method} target_modules is not set; name the layers to adapt (e.g. [\"q_proj\", \"v_proj\"], \"all-linear\", or LoraConfig.DefaultTargetModules(modelType))");
        var modules = model.NamedModules().Where(m => m.Name.Length > 0).ToList();
        var tunerPaths = modules.Where(m => m.Module is ITunerLayer).Select(m => m.Name).ToList();
        // Modules inside an adapter layer (its base_layer, lora_A.default, ...) are never targets themselves.
        var candidates = modules.Where(m => !tunerPaths.Any(t => m.Name.StartsWith(t + ".", StringComparison.Ordinal))).ToList();
        var targets = spec.TargetModules.IsAllLinear ? ResolveAllLinear(candidates, spec.TaskType) : spec.TargetModules;

        var targeted = new List<(string Name, LinearLayer Layer)>();
        foreach (var (name, module) in candidates)
        {
            var match = TargetMatching.Check(name, targets, spec.ExcludeModules, spec.ModulesToSave?.ToList(), spec.LayersToTransform?.ToList(), spec.LayersPattern?.ToList());
            if (match != TargetMatch.Targeted) continue;
            if (module is not LinearLayer linear)
                throw new PeftConfigException($"target module '{name}' is a {module.GetType().Name}; {spec.Method} adapts linear layers (LinearLayer) only. Linear layers in the model: {LinearNames(candidates)}");
            targeted.Add((name, linear));
        }
        if (targeted.Count == 0)
            throw new PeftConfigException($"{spec.Method} target_modules {spec.TargetModules} matched no module of the model. Linear layers in the model: {LinearNames(candidates)}");
        return targeted;
    }

    /// <summary>Puts <paramref name="wrapper"/> in place of the module at <paramref name="name"/>, or a clear error.</summary>
    internal static void Replace(Module model, string name, Module wrapper, string method)
    {
        try
        {
            model.ReplaceModule(name, wrapper);
        }
        catch (ArgumentException e)
        {
            throw new PeftConfigException($"cannot wrap '{name}' with {method}: {e.Message}. The model must hold it in a ModuleSlot<LinearLayer>.", e);
        }
    }

    /// <summary>"all-linear": every linear layer except the output head (and, for SEQ_CLS without one, the classifier).</summary>
    private static ModuleSelector ResolveAllLinear(List<(string Name, Module Module)> candidates, string? taskType)
    {
        var linear = candidates.Where(m => m.Module is LinearLayer).Select(m => m.Name).ToList();
        var exclude = OutputLayerNames.Where(n => linear.Contains(n)).ToList();
        if (exclude.Count == 0 && taskType == "SEQ_CLS")
        {
            var head = SequenceClassificationHeadNames.FirstOrDefault(n => candidates.Any(m => m.Name == n));
            if (head is not null) exclude.Add(head);
        }
        var names = linear.Where(n => !exclude.Contains(n)).ToList();
        return ModuleSelector.FromNames(names);
    }

    private static string LinearNames(List<(string Name, Module Module)> candidates)
    {
        var names = candidates.Where(m => m.Module is LinearLayer).Select(m => m.Name).ToList();
        return names.Count == 0 ? "(none)" : string.Join(", ", names);
    }
}

/// <summary>The target-selection fields a LoRA-family config shares (see <see cref="LoraInjector.FindTargets"/>).</summary>
internal sealed record TargetSpec(
    string Method,
    ModuleSelector? TargetModules,
    ModuleSelector? ExcludeModules,
    IList<string>? ModulesToSave,
    IList<int>? LayersToTransform,
    IList<string>? LayersPattern,
    string? TaskType);
