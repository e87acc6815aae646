using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Reft;

/// <summary>
/// The ReFT adapters of one backbone, attached under its <c>interventions</c> slot (<see cref="IResidualStreamHost"/>):
/// after each block the active adapter edits the hidden state at its chosen layers and positions. One adapter is
/// active at a time; an intervention edits activations, so there is nothing to merge into weights.
/// </summary>
public sealed class ReftLayer : Module, ITunerLayer, IResidualStreamHook
{
    private readonly Dictionary<string, ModuleSlot<ReftAdapter>> adapters = new(StringComparer.Ordinal);
    private readonly List<string> order = [];
    private readonly List<string> active = [];
    private readonly Module emptyBase = new PromptPlumbing.EmptyModule();
    private bool enabled = true;

    internal void Add(string adapterName, ReftConfig config, int hidden, Generator generator)
    {
        if (adapters.ContainsKey(adapterName)) throw new InvalidOperationException($"ReFT adapter '{adapterName}' already exists on this model");
        adapters.Add(adapterName, RegisterModule(adapterName, new ReftAdapter(config, hidden, generator)));
        order.Add(adapterName);
    }

    /// <summary>An adapter's interventions with their module names ("layer_2_first", "layer_2_last" or "layer_2").</summary>
    public IReadOnlyList<(string Name, ReftIntervention Intervention)> Interventions(string adapterName) => Adapter(adapterName).Interventions;

    /// <inheritdoc/>
    public Tensor AfterBlock(int layer, Tensor hidden, ResidualStreamContext context)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(context);
        if (!enabled || active.Count != 1) return hidden;
        return Adapter(active[0]).Apply(layer, hidden, context, IsTraining);
    }

    /// <inheritdoc/>
    public Module BaseLayer => emptyBase;

    /// <inheritdoc/>
    public IReadOnlyList<string> AdapterNames => order;

    /// <inheritdoc/>
    public IReadOnlyList<string> ActiveAdapters => active;

    /// <inheritdoc/>
    public IReadOnlyList<string> MergedAdapters => [];

    /// <inheritdoc/>
    public bool AdaptersEnabled
    {
        get => enabled;
        set
        {
            if (!value)
            {
                foreach (var name in order) SetAdapterTrainable(name, false);
            }
            enabled = value;
        }
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        var chosen = new List<string>();
        foreach (var name in adapterNames)
        {
            if (adapters.ContainsKey(name)) chosen.Add(name);
            else if (!ignoreMissing) throw new KeyNotFoundException($"ReFT adapter '{name}' does not exist (adapters: {string.Join(", ", order)})");
        }
        if (chosen.Count > 1) throw new InvalidOperationException($"only one ReFT adapter can be active at a time; asked for [{string.Join(", ", chosen)}]");
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in order) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable) => Adapter(adapterName).SetRequiresGrad(trainable);

    /// <inheritdoc/>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false) =>
        throw new InvalidOperationException("a ReFT intervention edits hidden states at chosen positions and cannot be merged into the model's weights");

    /// <inheritdoc/>
    public void Unmerge()
    {
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        foreach (var (name, intervention) in Adapter(adapterName).Interventions)
        {
            yield return ($"{name}.rotate_layer.householder", intervention.RotateLayer.Householder);
            yield return ($"{name}.learned_source.weight", intervention.LearnedSource.Weight);
            yield return ($"{name}.learned_source.bias", intervention.LearnedSource.Bias!);
        }
    }

    private ReftAdapter Adapter(string adapterName) => adapters.TryGetValue(adapterName, out var slot)
        ? slot.Module
        : throw new KeyNotFoundException($"ReFT adapter '{adapterName}' does not exist (adapters: {string.Join(", ", order)})");
}
