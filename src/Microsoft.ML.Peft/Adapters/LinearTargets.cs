using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// Finds the linear layers a method wraps, with PEFT's target_modules / exclude_modules / modules_to_save rules
/// (<see cref="TargetMatching"/>), and fails before anything changes when the selection is empty or hits a module that
/// is not a <see cref="LinearLayer"/>, listing the model's linear layers. Shared by the bottleneck adapters and the
/// selective methods that wrap layers (FaR, PaFi, diff pruning).
/// </summary>
internal static class LinearTargets
{
    /// <summary>
    /// The targeted layers in model order. Modules inside an existing adapter layer (its base_layer, ...) are never
    /// targets; an adapter layer itself is returned (so a second adapter joins it).
    /// </summary>
    public static List<(string Name, LinearLayer Layer)> Find(Module model, ModuleSelector? targets, ModuleSelector? exclude, IList<string>? modulesToSave, string method, string example)
    {
        ArgumentNullException.ThrowIfNull(model);
        var candidates = Candidates(model);
        if (targets is null)
            throw new PeftConfigException($"{method} target_modules is not set; name the layers to adapt (e.g. {example}). Linear layers in the model: {LinearNames(candidates)}");
        if (targets.IsAllLinear)
            throw new PeftConfigException($"{method} does not accept 'all-linear'; name the layers to adapt (e.g. {example})");
        var found = new List<(string, LinearLayer)>();
        foreach (var (name, module) in candidates)
        {
            if (TargetMatching.Check(name, targets, exclude, modulesToSave?.ToList()) != TargetMatch.Targeted) continue;
            if (module is not LinearLayer linear)
                throw new PeftConfigException($"target module '{name}' is a {module.GetType().Name}; {method} adapts linear layers (LinearLayer) only. Linear layers in the model: {LinearNames(candidates)}");
            found.Add((name, linear));
        }
        if (found.Count == 0)
            throw new PeftConfigException($"{method} target_modules {targets} matched no module of the model. Linear layers in the model: {LinearNames(candidates)}");
        return found;
    }

    /// <summary>Every named module that is not inside an adapter layer.</summary>
    public static List<(string Name, Module Module)> Candidates(Module model)
    {
        var modules = model.NamedModules().Where(m => m.Name.Length > 0).ToList();
        var tunerPaths = modules.Where(m => m.Module is ITunerLayer).Select(m => m.Name).ToList();
        return modules.Where(m => !tunerPaths.Any(t => m.Name.StartsWith(t + ".", StringComparison.Ordinal))).ToList();
    }

    /// <summary>The linear layers' names for error messages, or "(none)".</summary>
    public static string LinearNames(IEnumerable<(string Name, Module Module)> candidates)
    {
        var names = candidates.Where(m => m.Module is LinearLayer).Select(m => m.Name).ToList();
        return names.Count == 0 ? "(none)" : string.Join(", ", names);
    }

    /// <summary>Puts <paramref name="wrapper"/> in place of the module at <paramref name="name"/>, with a clear error when the slot refuses it.</summary>
    public static void Replace(Module model, string name, LinearLayer wrapper, string method)
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
}
