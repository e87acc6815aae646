using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// The bookkeeping every adapter-over-a-linear-layer method shares (PEFT's <c>BaseTunerLayer</c> for linear
/// targets): the frozen base in the "base_layer" slot, its feature counts, the active and merged adapter lists, the
/// enable switch and the rules of merging (each adapter once, all unmerged in reverse order). A method supplies its
/// adapters' storage, forward and the arithmetic of folding one adapter into the base weight.
/// </summary>
/// <remarks>
/// The "base_layer" slot is registered first, so parameter names and state-dict order stay PEFT's
/// ("q_proj.base_layer.weight" before the adapter's own tensors).
/// </remarks>
public abstract class TunerLinearLayer : LinearLayer, ITunerLayer
{
    private readonly ModuleSlot<LinearLayer> baseLayer;
    private readonly List<string> active = [];
    private readonly List<string> merged = [];
    private bool enabled = true;

    /// <summary>Registers <paramref name="baseLayer"/> as "base_layer"; adapters are added by the method.</summary>
    protected TunerLinearLayer(LinearLayer baseLayer)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        // A second adapter of the same method joins the existing layer (PEFT's update_layer) rather than nesting.
        if (baseLayer.GetType() == GetType())
            throw new ArgumentException($"cannot wrap a {GetType().Name} in another {GetType().Name}; add an adapter to it instead", nameof(baseLayer));
        this.baseLayer = RegisterModule("base_layer", baseLayer);
    }

    /// <summary>The wrapped layer.</summary>
    public LinearLayer Base => baseLayer.Module;

    /// <inheritdoc/>
    Module ITunerLayer.BaseLayer => baseLayer.Module;

    /// <inheritdoc/>
    public sealed override int InFeatures => baseLayer.Module.InFeatures;

    /// <inheritdoc/>
    public sealed override int OutFeatures => baseLayer.Module.OutFeatures;

    /// <inheritdoc/>
    public abstract IReadOnlyList<string> AdapterNames { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> ActiveAdapters => active;

    /// <inheritdoc/>
    public IReadOnlyList<string> MergedAdapters => merged;

    /// <inheritdoc/>
    public bool AdaptersEnabled
    {
        get => enabled;
        set
        {
            if (value == enabled) return;
            if (!value)
            {
                if (merged.Count > 0) Unmerge();
                foreach (var name in AdapterNames) SetAdapterTrainable(name, false);
            }
            enabled = value;
        }
    }

    /// <summary>
    /// True when the base layer stores its weight [in, out] (a GPT-2 <see cref="Conv1D"/>; PEFT's per-layer
    /// <c>fan_in_fan_out</c>), so a merge adds the transpose of the [out, in] update.
    /// </summary>
    public bool FanInFanOut => baseLayer.Module is Conv1D;

    /// <summary>How messages name this layer: "this layer" unless a method knows its path.</summary>
    protected virtual string LayerDescription => "this layer";

    /// <summary>Whether <paramref name="adapterName"/> is one of this layer's adapters.</summary>
    protected abstract bool HasAdapter(string adapterName);

    /// <inheritdoc/>
    public abstract void SetAdapterTrainable(string adapterName, bool trainable);

    /// <inheritdoc/>
    public abstract IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName);

    /// <summary>Folds one (validated, not yet merged) adapter into the base weight.</summary>
    protected abstract void MergeAdapter(string adapterName, bool safeMerge);

    /// <summary>Takes one merged adapter out of the base weight again (called last-merged first).</summary>
    protected abstract void UnmergeAdapter(string adapterName);

    /// <summary>The active adapters that are not merged, in activation order: the ones a forward must apply.</summary>
    protected IEnumerable<string> UnmergedActiveAdapters()
    {
        foreach (var name in active)
        {
            if (!merged.Contains(name)) yield return name;
        }
    }

    /// <summary>Whether an adapter's update is currently folded into the base weight.</summary>
    protected bool IsMerged(string adapterName) => merged.Contains(adapterName);

    /// <summary>The error for a name that is not an adapter here, listing the ones that are.</summary>
    protected KeyNotFoundException UnknownAdapter(string adapterName) =>
        new($"adapter '{adapterName}' does not exist on {LayerDescription} (adapters: {string.Join(", ", AdapterNames)})");

    /// <summary><paramref name="adapterName"/> if it exists here, otherwise <see cref="UnknownAdapter"/>.</summary>
    protected string CheckedAdapter(string adapterName) => HasAdapter(adapterName) ? adapterName : throw UnknownAdapter(adapterName);

    /// <summary>Checks that a new adapter may be added: a fresh non-empty name, and nothing merged.</summary>
    protected void CheckCanAddAdapter(string adapterName)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        if (HasAdapter(adapterName)) throw new InvalidOperationException($"adapter '{adapterName}' already exists on {LayerDescription}");
        if (merged.Count > 0) throw new InvalidOperationException($"cannot add adapter '{adapterName}' to {LayerDescription} while adapters [{string.Join(", ", merged)}] are merged; unmerge first");
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        var chosen = new List<string>();
        foreach (var name in adapterNames)
        {
            if (HasAdapter(name)) chosen.Add(name);
            else if (!ignoreMissing) throw UnknownAdapter(name);
        }
        if (merged.Count > 0) Unmerge();
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in AdapterNames) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <summary>
    /// Folds each adapter (default: the active ones) into the base weight. Merging an adapter that is already merged is
    /// an error; with <paramref name="safeMerge"/> the merged weight is checked for NaN/∞ before it replaces the base's.
    /// </summary>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false)
    {
        var names = adapterNames ?? active;
        if (!enabled) throw new InvalidOperationException("cannot merge while adapters are disabled: the forward would then apply the merged update to the 'base' output");
        foreach (var name in names)
        {
            _ = CheckedAdapter(name);
            if (merged.Contains(name)) throw new InvalidOperationException($"adapter '{name}' is already merged into {LayerDescription}; merging twice would apply its update twice");
        }
        foreach (var name in names.ToList())
        {
            MergeAdapter(name, safeMerge);
            merged.Add(name);
        }
    }

    /// <inheritdoc/>
    public void Unmerge()
    {
        for (int i = merged.Count - 1; i >= 0; i--) UnmergeAdapter(merged[i]);
        merged.Clear();
    }

    /// <summary>
    /// The base after checking it can take a merge: a <see cref="Linear"/> or <see cref="Conv1D"/> with a float32
    /// weight (merging into reduced precision would round the update so that unmerging could not restore it).
    /// </summary>
    protected Module MergeableBase(string op)
    {
        var module = baseLayer.Module;
        if (module is not (Linear or Conv1D))
            throw new NotSupportedException($"{op} into {LayerDescription}: the base layer is a {module.GetType().Name}; merging needs a Linear or Conv1D with a float32 weight");
        var weight = StoredBaseWeight(module);
        if (weight.DType != DType.Float32)
            throw new NotSupportedException($"{op} into {LayerDescription}: the base weight {weight} is {DTypeInfo.Name(weight.DType)}; merging into a reduced-precision weight would round the update and unmerging could not restore it. Convert the base weight to float32 first.");
        return module;
    }

    /// <summary>The stored weight of a mergeable base: [out, in] for <see cref="Linear"/>, [in, out] for <see cref="Conv1D"/>.</summary>
    protected static Tensor StoredBaseWeight(Module module) => module is Conv1D conv ? conv.Weight : ((Linear)module).Weight;

    /// <summary>The bias [out] of a mergeable base, or null.</summary>
    protected static Tensor? StoredBaseBias(Module module) => module is Conv1D conv ? conv.Bias : ((Linear)module).Bias;

    /// <summary>An [out, in] update in the base weight's own layout (a contiguous transpose for a Conv1D).</summary>
    protected Tensor ToStoredLayout(Tensor deltaOutIn) => FanInFanOut ? deltaOutIn.Transpose(0, 1).Contiguous() : deltaOutIn;

    /// <summary>
    /// W ← W + sign·<paramref name="storedDelta"/> (already in the stored layout). With <paramref name="safeMerge"/> the
    /// sum goes to a copy that is checked for NaN/∞ before it replaces the weight; otherwise it is added in place (into a
    /// private copy first when the weight is read-only checkpoint memory or a strided view).
    /// </summary>
    protected void AddToBaseWeight(string adapterName, Tensor storedDelta, float sign, bool safeMerge)
    {
        var module = MergeableBase(sign > 0 ? "merge" : "unmerge");
        using (Autograd.NoGrad())
        {
            if (safeMerge)
            {
                Tensor sum;
                using (TensorScope.Untracked()) sum = StoredBaseWeight(module).Add(sign == 1f ? storedDelta : storedDelta.Mul(sign));
                if (!sum.AllFinite()) throw new InvalidOperationException($"merging adapter '{adapterName}' into {LayerDescription} produces NaN or infinite weights; the layer was left unchanged");
                module.ReplaceParameter("weight", sum);
                return;
            }
            WritableBaseWeight(module).Add_(storedDelta, sign);
        }
    }

    /// <summary>The base weight, first copied into engine-owned memory when it lives in a (read-only) checkpoint mapping.</summary>
    protected static Tensor WritableBaseWeight(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        var weight = StoredBaseWeight(module);
        if (weight.Storage is ExternalStorage || !weight.IsContiguous)
        {
            Tensor copy;
            using (TensorScope.Untracked()) copy = weight.Clone();
            module.ReplaceParameter("weight", copy);
        }
        return StoredBaseWeight(module);
    }
}
