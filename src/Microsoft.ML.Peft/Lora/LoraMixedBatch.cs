using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// Serving many LoRA adapters over one base in a single batch (PEFT's <c>adapter_names=[...]</c> argument, PR #1558):
/// each row of the batch names the adapter it runs with, or <see cref="BaseModelName"/> for the bare base model.
/// </summary>
public static class LoraMixedBatch
{
    /// <summary>The name that selects the base model without any adapter for a row (PEFT's "__base__").</summary>
    public const string BaseModelName = "__base__";

    /// <summary>
    /// Until the returned scope is disposed, every LoRA layer of <paramref name="peft"/> applies to batch row i (the
    /// first dimension of its input) only the adapter <paramref name="adapterNames"/>[i]. Each row's output equals a
    /// run of that row with its adapter alone, bit for bit. Inference only, as in PEFT: the model must be in eval mode
    /// and no adapter may be merged.
    /// </summary>
    /// <exception cref="ArgumentException">An unknown adapter name (the message lists the adapters).</exception>
    /// <exception cref="InvalidOperationException">The model is training, adapters are merged or disabled.</exception>
    public static IDisposable UseAdapterPerRow(this PeftModel peft, IReadOnlyList<string> adapterNames)
    {
        ArgumentNullException.ThrowIfNull(peft);
        ArgumentNullException.ThrowIfNull(adapterNames);
        foreach (var name in adapterNames.Distinct())
        {
            if (name != BaseModelName && !peft.PeftConfigs.ContainsKey(name))
                throw new ArgumentException($"row adapter '{name}' does not exist (adapters: {string.Join(", ", peft.AdapterNames)}; '{BaseModelName}' selects the base model)", nameof(adapterNames));
            if (name != BaseModelName && peft.PeftConfigs[name] is not LoraConfig)
                throw new ArgumentException($"row adapter '{name}' is {peft.PeftConfigs[name].PeftType}; only LoRA adapters can be mixed in one batch", nameof(adapterNames));
        }
        if (peft.Model.IsTraining) throw new InvalidOperationException("mixed-batch adapters are for inference; call Eval() on the model first (as PEFT requires)");
        if (!peft.AdaptersEnabled) throw new InvalidOperationException("adapters are disabled");
        var layers = peft.TunerLayers().Select(l => l.Layer).OfType<LoraLinear>().ToList();
        if (layers.Any(l => l.MergedAdapters.Count > 0)) throw new InvalidOperationException("mixed-batch inference needs unmerged adapters; call UnmergeAdapter() first");
        var rows = adapterNames.Select(n => n == BaseModelName ? null : n).ToArray();
        foreach (var layer in layers) layer.RowAdapters = rows;
        return new Scope(layers);
    }

    private sealed class Scope(List<LoraLinear> layers) : IDisposable
    {
        public void Dispose()
        {
            foreach (var layer in layers) layer.RowAdapters = null;
        }
    }
}
