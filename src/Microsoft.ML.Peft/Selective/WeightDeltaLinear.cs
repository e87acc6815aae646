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
public sealed class WeightDeltaLinear : TunerLinearLayer
{
    private readonly ModuleDict<WeightDelta> deltas;

    /// <summary>Wraps <paramref name="baseLayer"/> (a <see cref="Linear"/> or <see cref="Conv1D"/> for merging).</summary>
    public WeightDeltaLinear(LinearLayer baseLayer, string path)
        : base(baseLayer)
    {
        Path = path;
        deltas = RegisterModule("delta", new ModuleDict<WeightDelta>()).Module;
    }

    /// <summary>The layer's dotted path (for messages).</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> AdapterNames => deltas.Keys;

    /// <inheritdoc/>
    protected override string LayerDescription => $"'{Path}'";

    /// <inheritdoc/>
    protected override bool HasAdapter(string adapterName) => deltas.ContainsKey(adapterName);

    /// <summary>The weight (as [out, in]) that a merge writes into: the base's own tensor.</summary>
    internal Tensor BaseWeight => Base switch
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
        CheckCanAddAdapter(adapterName);
        deltas.Add(adapterName, delta);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var y = Base.Forward(input);
        if (!AdaptersEnabled) return y;
        foreach (var name in UnmergedActiveAdapters()) y = y.Add(deltas[name].Forward(input));
        return y;
    }

    /// <inheritdoc/>
    public override void SetAdapterTrainable(string adapterName, bool trainable) => deltas[adapterName].SetRequiresGrad(trainable);

    /// <summary>
    /// Adds the adapter's ΔW (and Δb) into the base weight after letting it finalise (<see cref="WeightDelta.FinalizeDelta"/>).
    /// </summary>
    protected override void MergeAdapter(string adapterName, bool safeMerge)
    {
        deltas[adapterName].FinalizeDelta();
        Apply(adapterName, sign: 1f, safeMerge);
    }

    /// <inheritdoc/>
    protected override void UnmergeAdapter(string adapterName) => Apply(adapterName, sign: -1f, safeMerge: false);

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName) =>
        deltas[adapterName].SavedTensors().Select(t => ("delta." + t.Suffix, t.Tensor));

    /// <summary>W ← W ± ΔW (transposed for a Conv1D's [in, out] weight), b ← b ± Δb.</summary>
    private void Apply(string adapterName, float sign, bool safeMerge)
    {
        var module = MergeableBase(sign > 0 ? "merge" : "unmerge");
        var bias = StoredBaseBias(module);
        using (Autograd.NoGrad())
        using (TensorScope.Untracked())
        {
            var delta = deltas[adapterName].DenseWeight();
            if (FanInFanOut) delta = delta.Transpose(0, 1);
            var newWeight = StoredBaseWeight(module).Add(delta.Mul(sign));
            var deltaBias = deltas[adapterName].DenseBias();
            var newBias = deltaBias is not null && bias is not null ? bias.Add(deltaBias.Mul(sign)) : null;
            if (safeMerge && (!newWeight.AllFinite() || newBias?.AllFinite() == false))
                throw new InvalidOperationException($"merging adapter '{adapterName}' into '{Path}' produces NaN or infinite weights; the layer was left unchanged");
            module.ReplaceParameter("weight", newWeight.Contiguous());
            if (newBias is not null) module.ReplaceParameter("bias", newBias);
        }
    }
}
