using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// The bookkeeping shared by tuner layers that wrap no base module and whose adapters act one at a time and never fold
/// into weights (soft prompts, adaption prompts, ReFT interventions; PEFT allows one such adapter active at once): the
/// adapters as children named after them, the add order, the active adapter, the enable switch and the freezing rules.
/// A method supplies what its active adapter does in the forward pass and which tensors it saves.
/// </summary>
/// <remarks>
/// Adapters are held as <see cref="Module"/> so a method may keep its adapter type private; it casts what
/// <see cref="Adapter"/> and <see cref="Current"/> return.
/// </remarks>
public abstract class SingleActiveTunerLayer : Module, ITunerLayer
{
    private readonly Dictionary<string, ModuleSlot<Module>> adapters = new(StringComparer.Ordinal);
    private readonly List<string> order = [];
    private readonly List<string> active = [];
    private readonly Module emptyBase = new PromptPlumbing.EmptyModule();
    private bool enabled = true;

    /// <summary>How messages name one adapter of this method ("ReFT adapter", "adaption prompt").</summary>
    protected abstract string AdapterKind { get; }

    /// <summary>Why this method's adapters cannot be merged (the message <see cref="Merge"/> throws).</summary>
    protected abstract string MergeRefusal { get; }

    /// <summary>
    /// Registers <paramref name="adapter"/> as the child <paramref name="adapterName"/> (so parameter names read as PEFT's
    /// "&lt;slot&gt;.&lt;adapter&gt;.&lt;tensor&gt;"); not activated.
    /// </summary>
    protected void AddAdapter(string adapterName, Module adapter)
    {
        ArgumentNullException.ThrowIfNull(adapter);
        ThrowIfExists(adapterName);
        adapters.Add(adapterName, RegisterModule(adapterName, adapter));
        order.Add(adapterName);
    }

    /// <summary>Throws when <paramref name="adapterName"/> is taken (call before drawing a new adapter's weights).</summary>
    protected void ThrowIfExists(string adapterName)
    {
        if (adapters.ContainsKey(adapterName)) throw new InvalidOperationException($"{AdapterKind} '{adapterName}' already exists");
    }

    /// <summary>The module of <paramref name="adapterName"/>.</summary>
    protected Module Adapter(string adapterName) => adapters.TryGetValue(adapterName, out var slot)
        ? slot.Module
        : throw new KeyNotFoundException($"{AdapterKind} '{adapterName}' does not exist (adapters: {string.Join(", ", order)})");

    /// <summary>The adapter the forward pass applies: null while adapters are disabled or none is active.</summary>
    protected Module? Current => enabled && active.Count == 1 ? Adapter(active[0]) : null;

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
            else if (!ignoreMissing) throw new KeyNotFoundException($"{AdapterKind} '{name}' does not exist (adapters: {string.Join(", ", order)})");
        }
        if (chosen.Count > 1) throw new InvalidOperationException($"only one {AdapterKind} can be active at a time; asked for [{string.Join(", ", chosen)}]");
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in order) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable) => Adapter(adapterName).SetRequiresGrad(trainable);

    /// <inheritdoc/>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false) => throw new InvalidOperationException(MergeRefusal);

    /// <inheritdoc/>
    /// <remarks>Nothing is ever merged, so there is nothing to undo.</remarks>
    public void Unmerge()
    {
    }

    /// <inheritdoc/>
    public abstract IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName);
}
