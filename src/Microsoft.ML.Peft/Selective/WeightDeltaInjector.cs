using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// Puts a <see cref="WeightDeltaLinear"/> around each targeted linear layer (or adds the adapter to an existing one),
/// creating every delta before the model changes so a failure leaves it untouched.
/// </summary>
internal static class WeightDeltaInjector
{
    /// <param name="model">The model.</param>
    /// <param name="targets">target_modules.</param>
    /// <param name="config">The method's config (exclude_modules / modules_to_save come from it).</param>
    /// <param name="exclude">exclude_modules.</param>
    /// <param name="adapterName">The adapter.</param>
    /// <param name="create">Makes the delta for (path, base weight as [out, in], base layer).</param>
    public static IReadOnlyList<string> Inject(Module model, ModuleSelector? targets, PeftConfig config, ModuleSelector? exclude, string adapterName, Func<string, Tensor, LinearLayer, WeightDelta> create)
    {
        config.Validate();
        var found = LinearTargets.Find(model, targets, exclude, config.ModulesToSave, config.PeftType, "[\"q_proj\", \"v_proj\", \"down_proj\"] or [\"query\", \"value\", \"output.dense\"]");
        var planned = new List<(string Name, LinearLayer Layer, WeightDelta Delta)>();
        foreach (var (name, layer) in found)
        {
            var baseLayer = layer is WeightDeltaLinear existing ? existing.Base : layer;
            planned.Add((name, layer, create(name, WeightOf(name, baseLayer), baseLayer)));
        }
        foreach (var (name, layer, delta) in planned)
        {
            if (layer is not WeightDeltaLinear wrapper)
            {
                wrapper = new WeightDeltaLinear(layer, name);
                LinearTargets.Replace(model, name, wrapper, config.PeftType);
            }
            wrapper.AddAdapter(adapterName, delta);
        }
        return planned.Select(p => p.Name).ToList();
    }

    /// <summary>The layer's weight as [out, in] (a transposed view for GPT-2's Conv1D).</summary>
    private static Tensor WeightOf(string name, LinearLayer layer) => layer switch
    {
        Linear l => l.Weight,
        Conv1D c => c.Weight.Transpose(0, 1),
        _ => throw new PeftConfigException($"'{name}' is a {layer.GetType().Name}; FaR, PaFi and diff pruning need a Linear or Conv1D weight to select from and merge into"),
    };
}
