using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// Puts bottleneck adapters into a module tree: wraps each targeted output projection in a
/// <see cref="BottleneckAdapterLinear"/> (or adds the adapter to an existing one) and, for parallel adapters, the
/// feed-forward input projection of the same layer in an <see cref="AdapterInputTap"/>. Every target and pairing is
/// checked before the model changes.
/// </summary>
internal static class BottleneckAdapterInjector
{
    private const string Method = "BOTTLENECK_ADAPTER";

    public static IReadOnlyList<string> Inject(Module model, BottleneckAdapterConfig config, string adapterName, Generator generator)
    {
        config.Validate();
        var targets = LinearTargets.Find(model, config.TargetModules, config.ExcludeModules, config.ModulesToSave, Method,
            "[\"o_proj\", \"down_proj\"] for Llama, [\"output.dense\"] for BERT, or BottleneckAdapterConfig.DefaultModules(modelType)");
        var inputs = config.Placement == AdapterPlacement.Parallel ? PairInputs(model, config, targets) : null;

        var wrapped = new List<string>();
        foreach (var (name, linear) in targets)
        {
            AdapterInputTap? tap = null;
            if (inputs is not null)
            {
                var (inputName, inputLayer) = inputs[name];
                tap = inputLayer as AdapterInputTap;
                if (tap is null)
                {
                    tap = new AdapterInputTap(inputLayer);
                    LinearTargets.Replace(model, inputName, tap, Method);
                }
            }
            if (linear is not BottleneckAdapterLinear layer)
            {
                layer = new BottleneckAdapterLinear(linear, name);
                LinearTargets.Replace(model, name, layer, Method);
            }
            layer.AddAdapter(adapterName, config, tap, generator);
            wrapped.Add(name);
        }
        return wrapped;
    }

    /// <summary>
    /// For each target, the parallel_input_modules layer with the same layer index (the feed-forward block's first
    /// projection), checked: exactly one per target, and its input as wide as the target's output.
    /// </summary>
    private static Dictionary<string, (string Name, LinearLayer Layer)> PairInputs(Module model, BottleneckAdapterConfig config, List<(string Name, LinearLayer Layer)> targets)
    {
        var inputs = LinearTargets.Find(model, config.ParallelInputModules, config.ExcludeModules, config.ModulesToSave, Method + " parallel_input_modules",
            "[\"up_proj\"] for Llama, [\"intermediate.dense\"] for BERT");
        var pairs = new Dictionary<string, (string, LinearLayer)>(StringComparer.Ordinal);
        foreach (var (name, layer) in targets)
        {
            int? index = Selective.SelectiveParameters.LayerIndex(name, null);
            var sameLayer = inputs.Where(i => Selective.SelectiveParameters.LayerIndex(i.Name, null) == index).ToList();
            if (sameLayer.Count != 1)
                throw new PeftConfigException($"parallel adapter at '{name}' (layer {index?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "none"}) needs exactly one parallel_input_modules layer in the same layer; found [{string.Join(", ", sameLayer.Select(i => i.Name))}] among [{string.Join(", ", inputs.Select(i => i.Name))}]");
            var (inputName, inputLayer) = sameLayer[0];
            if (inputLayer.InFeatures != layer.OutFeatures)
                throw new PeftConfigException($"parallel adapter at '{name}' reads the input of '{inputName}', which has {inputLayer.InFeatures} features, but '{name}' outputs {layer.OutFeatures}; parallel_input_modules must name the feed-forward block's first projection");
            pairs[name] = (inputName, inputLayer);
        }
        return pairs;
    }
}
