using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.IA3;

/// <summary>
/// Puts (IA)³ layers into a module tree as PEFT's <c>IA3Model</c> does: matches names with
/// <see cref="TargetMatching"/> and replaces each targeted <see cref="LinearLayer"/> by an <see cref="IA3Linear"/>
/// (or adds the adapter to an existing one), input-scaling for feedforward_modules.
/// </summary>
internal static class IA3Injector
{
    /// <summary>Output heads "all-linear" leaves alone (PEFT skips <c>get_output_embeddings()</c>), as for LoRA.</summary>
    private static readonly string[] OutputLayerNames = ["lm_head", "embed_out", "cls.predictions.decoder"];

    /// <summary>Classification heads "all-linear" skips for SEQ_CLS when there is no output layer (PEFT's SEQ_CLS_HEAD_NAMES).</summary>
    private static readonly string[] SequenceClassificationHeadNames = ["score", "classifier"];

    public static IReadOnlyList<string> Inject(Module model, IA3Config config, string adapterName, Generator generator)
    {
        config.Validate();
        if (config.TargetModules is null)
            throw new PeftConfigException("IA3 target_modules is not set; name the layers to scale (e.g. [\"k_proj\", \"v_proj\", \"down_proj\"] with feedforward_modules [\"down_proj\"], or IA3Config.DefaultModules(modelType))");

        var modules = model.NamedModules().Where(m => m.Name.Length > 0).ToList();
        var tunerPaths = modules.Where(m => m.Module is ITunerLayer).Select(m => m.Name).ToList();
        var candidates = modules.Where(m => !tunerPaths.Any(t => m.Name.StartsWith(t + ".", StringComparison.Ordinal))).ToList();
        var targets = config.TargetModules.IsAllLinear ? ResolveAllLinear(candidates, config) : config.TargetModules;

        var targeted = new List<(string Name, LinearLayer Layer)>();
        foreach (var (name, module) in candidates)
        {
            if (TargetMatching.Check(name, targets, config.ExcludeModules, config.ModulesToSave?.ToList()) != TargetMatch.Targeted) continue;
            if (module is not LinearLayer linear)
                throw new PeftConfigException($"target module '{name}' is a {module.GetType().Name}; IA3 adapts linear layers (LinearLayer) only. Linear layers in the model: {LinearNames(candidates)}");
            targeted.Add((name, linear));
        }
        if (targeted.Count == 0)
            throw new PeftConfigException($"IA3 target_modules {config.TargetModules} matched no module of the model. Linear layers in the model: {LinearNames(candidates)}");

        foreach (var (name, linear) in targeted)
        {
            bool feedForward = config.IsFeedForward(name);
            var layer = linear as IA3Linear;
            if (layer is not null && layer.IsFeedForward != feedForward)
                throw new PeftConfigException($"'{name}' already carries IA3 adapters with {(layer.IsFeedForward ? "input" : "output")} scaling; a second adapter cannot switch it to {(feedForward ? "input" : "output")} scaling");
            if (layer is null)
            {
                layer = new IA3Linear(linear, feedForward);
                try
                {
                    model.ReplaceModule(name, layer);
                }
                catch (ArgumentException e)
                {
                    throw new PeftConfigException($"cannot wrap '{name}' with IA3: {e.Message}. The model must hold it in a ModuleSlot<LinearLayer>.", e);
                }
            }
            layer.UpdateLayer(adapterName, config.InitIA3Weights, generator);
        }
        return targeted.Select(t => t.Name).ToList();
    }

    private static ModuleSelector ResolveAllLinear(List<(string Name, Module Module)> candidates, IA3Config config)
    {
        var linear = candidates.Where(m => m.Module is LinearLayer).Select(m => m.Name).ToList();
        var exclude = OutputLayerNames.Where(linear.Contains).ToList();
        if (exclude.Count == 0 && config.TaskType == "SEQ_CLS")
            exclude.AddRange(SequenceClassificationHeadNames.Where(n => candidates.Any(m => m.Name == n)).Take(1));
        var names = linear.Where(n => !exclude.Contains(n)).ToList();
        if (names.Count == 0) throw new PeftConfigException("IA3 target_modules 'all-linear' found no linear layer besides the output head");
        return ModuleSelector.FromNames(names);
    }

    private static string LinearNames(List<(string Name, Module Module)> candidates)
    {
        var names = candidates.Where(m => m.Module is LinearLayer).Select(m => m.Name).ToList();
        return names.Count == 0 ? "(none)" : string.Join(", ", names);
    }
}
