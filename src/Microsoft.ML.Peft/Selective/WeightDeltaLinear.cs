using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// A linear layer whose weight is fine-tuned through a separate learned difference (<see cref="WeightDelta"/>):
/// y = base(x) + Σ_active delta(x). Merging adds ΔW (and Δb) into the base weight, exactly the math of training W in
/// place on the selected entries, so a merged model has no extra cost at inference. In-memory names: "base_layer",
/// "delta.&lt;adapter&gt;.…"; saved suffixes "delta.…".
/// </summary>
public sealed class WeightDeltaLinear : LinearLayer, ITunerLayer
{
    private readonly ModuleSlot<LinearLayer> baseLayer;
    private readonly ModuleDict<WeightDelta> deltas;
    private readonly List<string> active = [];
    private readonly List<string> merged = [];
    private bool enabled = true;

    /// <summary>Wraps <paramref name="baseLayer"/> (a <see cref="Linear"/> or <see cref="Conv1D"/> for merging).</summary>
    public WeightDeltaLinear(LinearLayer baseLayer, string path)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is WeightDeltaLinear) throw new ArgumentException("cannot wrap a WeightDeltaLinear in another; add an adapter to it instead", nameof(baseLayer));
        Path = path;
        this.baseLayer = RegisterModule("base_layer", baseLayer);
        deltas = RegisterModule("delta", new ModuleDict<WeightDelta>()).Module;
    }

    /// <summary>The layer's dotted path (for messages).</summary>
    public string Path { get; }

    /// <summary>The wrapped layer.</summary>
    public LinearLayer Base => baseLayer.Module;

    /// <inheritdoc/>
    Module ITunerLayer.BaseLayer => baseLayer.Module;

    /// <inheritdoc/>
    public override int InFeatures => baseLayer.Module.InFeatures;

    /// <inheritdoc/>
    public override int OutFeatures => baseLayer.Module.OutFeatures;

    /// <inheritdoc/>
    public IReadOnlyList<string> AdapterNames => deltas.Keys;

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

    /// <summary>The weight (as [out, in]) that a merge writes into: the base's own tensor.</summary>
    internal Tensor BaseWeight => baseLayer.Module switch
    {
        Linear l => l.Weight,
        Conv1D c => c.Weight,
        var other => throw new NotSupportedException($"'{Path}' is a {other.GetType().Name}; only Linear and Conv1D weights can be read"),
    };

    /// <summary>The delta of an adapter.</summary>
    public WeightDelta Delta(string adapterName) => deltas[adapterName];

    /// <summary>Adds <paramref name="delta"/> as adapter <paramref name="adapterName"/> (trainable, not active).</summary>
    internal void AddAdapter(string adapterName, WeightDelta delta)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        if (deltas.ContainsKey(adapterName)) throw new InvalidOperationException($"adapter '{adapterName}' already exists on '{Path}'");
        if (merged.Count > 0) throw new InvalidOperationException($"cannot add adapter '{adapterName}' to '{Path}' while adapters are merged; unmerge first");
        deltas.Add(adapterName, delta);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var y = baseLayer.Module.Forward(input);
        if (!enabled) return y;
        foreach (var name in active)
        {
            if (!merged.Contains(name)) y = y.Add(deltas[name].Forward(input));
        }
        return y;
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        var chosen = new List<string>();
        foreach (var name in adapterNames)
        {
            if (deltas.ContainsKey(name)) chosen.Add(name);
            else if (!ignoreMissing) throw new KeyNotFoundException($"adapter '{name}' does not exist on '{Path}' (adapters: {string.Join(", ", AdapterNames)})");
        }
        if (merged.Count > 0) Unmerge();
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in AdapterNames) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable) => deltas[adapterName].SetRequiresGrad(trainable);

    /// <summary>
    /// Adds each adapter's ΔW (and Δb) into the base weight (default: the active adapters), after letting it finalise
    /// (<see cref="WeightDelta.FinalizeDelta"/>). <paramref name="safeMerge"/> checks the result for NaN/∞ first.
    /// </summary>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false)
    {
        var names = adapterNames ?? active;
        if (!enabled) throw new InvalidOperationException("cannot merge while adapters are disabled");
        foreach (var name in names)
        {
            _ = deltas[name];
            if (merged.Contains(name)) throw new InvalidOperationException($"adapter '{name}' is already merged into '{Path}'");
        }
        foreach (var name in names.ToList())
        {
            deltas[name].FinalizeDelta();
            Apply(name, sign: 1f, safeMerge);
            merged.Add(name);
        }
    }

    /// <inheritdoc/>
    public void Unmerge()
    {
        for (int i = merged.Count - 1; i >= 0; i--) Apply(merged[i], sign: -1f, safeMerge: false);
        merged.Clear();
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName) =>
        deltas[adapterName].SavedTensors().Select(t => ("delta." + t.Suffix, t.Tensor));

    /// <summary>W ← W ± ΔW (transposed for a Conv1D's [in, out] weight), b ← b ± Δb.</summary>
    private void Apply(string adapterName, float sign, bool safeMerge)
    {
        var (weightPath, bias, transposed) = baseLayer.Module switch
        {
            Linear l => ("weight", l.Bias, false),
            Conv1D c => ("weight", c.Bias, true),
            var other => throw new NotSupportedException($"merging into '{Path}' needs a Linear or Conv1D base, not a {other.GetType().Name}"),
        };
        var weight = BaseWeight;
        if (weight.DType != DType.Float32)
            throw new NotSupportedException($"merging into '{Path}': the base weight {weight} is {DTypeInfo.Name(weight.DType)}; convert the base weight to float32 first");
        using (Autograd.NoGrad())
        using (TensorScope.Untracked())
        {
            var delta = deltas[adapterName].DenseWeight();
            if (transposed) delta = delta.Transpose(0, 1);
            var newWeight = weight.Add(delta.Mul(sign));
            var deltaBias = deltas[adapterName].DenseBias();
            var newBias = deltaBias is not null && bias is not null ? bias.Add(deltaBias.Mul(sign)) : null;
            if (safeMerge && (!newWeight.AllFinite() || newBias?.AllFinite() == false))
                throw new InvalidOperationException($"merging adapter '{adapterName}' into '{Path}' produces NaN or infinite weights; the layer was left unchanged");
            baseLayer.Module.ReplaceParameter(weightPath, newWeight.Contiguous());
            if (newBias is not null) baseLayer.Module.ReplaceParameter("bias", newBias);
        }
    }
}
