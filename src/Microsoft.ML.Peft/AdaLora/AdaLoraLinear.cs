using Microsoft.ML.Peft.IA3;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdaLora;

/// <summary>
/// A linear layer with AdaLoRA adapters (PEFT's <c>adalora.SVDLinear</c>): the update is SVD-shaped,
/// ΔW = P·Λ·Q = B·diag(E)·A · alpha / (ranknum + 1e-5), with A [r, in] (Q, right singular vectors), E [r, 1] (the
/// singular values Λ, pruned by the <see cref="RankAllocator"/>), B [out, r] (P). In-memory names follow PEFT's
/// ParameterDicts: "lora_A.&lt;adapter&gt;", "lora_E.&lt;adapter&gt;", "lora_B.&lt;adapter&gt;", "ranknum.&lt;adapter&gt;"
/// (ranknum is frozen and not saved).
/// </summary>
/// <remarks>
/// The forward computes (x·(A⊙E)ᵀ)·Bᵀ, rank r first, and applies the scalar alpha/(ranknum + 1e-5) to the [rows, r]
/// product. With E = 0 at init the adapter is exactly the identity. Merging adds the delta to a float32 Linear or
/// Conv1D weight (transposed for Conv1D) and unmerging subtracts it.
/// </remarks>
public sealed class AdaLoraLinear : LinearLayer, ITunerLayer
{
    /// <summary>PEFT adds this to ranknum before dividing (adalora/layer.py).</summary>
    private const float RankEpsilon = 1e-5f;

    private readonly ModuleSlot<LinearLayer> baseLayer;
    private readonly ModuleDict<Dropout> dropouts;
    private readonly ParameterDict loraE;
    private readonly ParameterDict loraA;
    private readonly ParameterDict loraB;
    private readonly ParameterDict rankNum;
    private readonly Dictionary<string, double> alphas = new(StringComparer.Ordinal);
    private readonly List<string> active = [];
    private readonly List<string> merged = [];
    private bool enabled = true;

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet; add them with <see cref="UpdateLayer"/>).</summary>
    public AdaLoraLinear(LinearLayer baseLayer)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is ITunerLayer) throw new ArgumentException($"cannot wrap a {baseLayer.GetType().Name} in an AdaLoraLinear", nameof(baseLayer));
        this.baseLayer = RegisterModule("base_layer", baseLayer);
        dropouts = RegisterModule("lora_dropout", new ModuleDict<Dropout>()).Module;
        loraE = RegisterModule("lora_E", new ParameterDict()).Module;
        loraA = RegisterModule("lora_A", new ParameterDict()).Module;
        loraB = RegisterModule("lora_B", new ParameterDict()).Module;
        rankNum = RegisterModule("ranknum", new ParameterDict()).Module;
    }

    /// <summary>The wrapped layer.</summary>
    public LinearLayer Base => baseLayer.Module;

    /// <inheritdoc/>
    Module ITunerLayer.BaseLayer => baseLayer.Module;

    /// <inheritdoc/>
    public override int InFeatures => baseLayer.Module.InFeatures;

    /// <inheritdoc/>
    public override int OutFeatures => baseLayer.Module.OutFeatures;

    /// <inheritdoc/>
    public IReadOnlyList<string> AdapterNames => loraA.Keys;

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

    /// <summary>Q: A [r, in].</summary>
    public Tensor LoraA(string adapterName) => loraA[adapterName];

    /// <summary>Λ: E [r, 1], the singular values (zero where pruned).</summary>
    public Tensor LoraE(string adapterName) => loraE[adapterName];

    /// <summary>P: B [out, r].</summary>
    public Tensor LoraB(string adapterName) => loraB[adapterName];

    /// <summary>The rank an adapter was created with (init_r).</summary>
    public int Rank(string adapterName) => loraA[adapterName].Size(0);

    /// <summary>The scalar on the update: alpha / (ranknum + 1e-5), in float32 as PEFT computes it.</summary>
    public float Scaling(string adapterName) => (float)alphas[adapterName] / (rankNum[adapterName].Item() + RankEpsilon);

    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> of rank <paramref name="rank"/> (PEFT's <c>update_layer</c>): with
    /// <paramref name="initLoraWeights"/> E = 0 and A, B ~ N(0, 0.02²) (PEFT's reset_lora_parameters), otherwise all
    /// three standard normal. Scaling numerator alpha (r when alpha ≤ 0, as PEFT). Trainable, not activated.
    /// </summary>
    public void UpdateLayer(string adapterName, int rank, double alpha, double dropout, bool initLoraWeights, Generator generator)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        ArgumentNullException.ThrowIfNull(generator);
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"AdaLoRA init_r must be a positive integer, got {rank}");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), $"lora_dropout must be in [0, 1), got {dropout}");
        if (loraA.ContainsKey(adapterName)) throw new InvalidOperationException($"adapter '{adapterName}' already exists on this layer");
        if (merged.Count > 0) throw new InvalidOperationException($"cannot add adapter '{adapterName}' while adapters [{string.Join(", ", merged)}] are merged; unmerge first");
        Tensor a, e, b, r;
        using (TensorScope.Untracked())
        {
            // PEFT draws A, E, B from randn first; the default init then overwrites them.
            a = Tensor.Randn(generator, rank, InFeatures);
            e = Tensor.Randn(generator, rank, 1);
            b = Tensor.Randn(generator, OutFeatures, rank);
            if (initLoraWeights)
            {
                e.Zero_();
                a.Normal_(generator, 0f, 0.02f);
                b.Normal_(generator, 0f, 0.02f);
            }
            r = Tensor.Full(rank, 1);
        }
        dropouts.Add(adapterName, new Dropout((float)dropout, generator));
        loraE.Add(adapterName, e);
        loraA.Add(adapterName, a);
        loraB.Add(adapterName, b);
        rankNum.Add(adapterName, r);
        rankNum[adapterName].RequiresGrad = false;
        alphas[adapterName] = alpha > 0 ? alpha : rank;
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var result = baseLayer.Module.Forward(input);
        if (!enabled) return result;
        foreach (var name in active)
        {
            if (merged.Contains(name)) continue;
            var x = dropouts[name].Forward(input);
            var low = x.Linear(loraA[name].Mul(loraE[name])).Mul(Scaling(name));
            result = result.Add(low.Linear(loraB[name]));
        }
        return result;
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        var chosen = new List<string>();
        foreach (var name in adapterNames)
        {
            if (loraA.ContainsKey(name)) chosen.Add(name);
            else if (!ignoreMissing) throw new KeyNotFoundException($"adapter '{name}' does not exist on this layer (adapters: {string.Join(", ", AdapterNames)})");
        }
        if (merged.Count > 0) Unmerge();
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in AdapterNames) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable)
    {
        loraA[adapterName].RequiresGrad = trainable;
        loraE[adapterName].RequiresGrad = trainable;
        loraB[adapterName].RequiresGrad = trainable;
    }

    /// <summary>The update B·(A⊙E)·scaling [out, in] (a new tensor, not recorded).</summary>
    public Tensor DeltaWeight(string adapterName)
    {
        using (Autograd.NoGrad()) return loraB[adapterName].MatMul(loraA[adapterName].Mul(loraE[adapterName])).Mul(Scaling(adapterName));
    }

    /// <inheritdoc/>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false)
    {
        var names = adapterNames ?? active;
        if (!enabled) throw new InvalidOperationException("cannot merge while adapters are disabled");
        foreach (var name in names)
        {
            _ = loraA[name];
            if (merged.Contains(name)) throw new InvalidOperationException($"adapter '{name}' is already merged into this layer; merging twice would add its update twice");
        }
        foreach (var name in names.ToList())
        {
            Tensor sum;
            using (Autograd.NoGrad())
            using (TensorScope.Untracked())
            {
                sum = MergeableWeight("merge").Add(StoredLayoutDelta(name));
            }
            if (safeMerge && !sum.AllFinite()) throw new InvalidOperationException($"merging adapter '{name}' produces NaN or infinite weights; the layer was left unchanged");
            baseLayer.Module.ReplaceParameter("weight", sum);
            merged.Add(name);
        }
    }

    /// <inheritdoc/>
    public void Unmerge()
    {
        for (int i = merged.Count - 1; i >= 0; i--)
        {
            Tensor restored;
            using (Autograd.NoGrad())
            using (TensorScope.Untracked())
            {
                restored = MergeableWeight("unmerge").Sub(StoredLayoutDelta(merged[i]));
            }
            baseLayer.Module.ReplaceParameter("weight", restored);
        }
        merged.Clear();
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        _ = loraA[adapterName];
        yield return ("lora_A", loraA[adapterName]);
        yield return ("lora_B", loraB[adapterName]);
        yield return ("lora_E", loraE[adapterName]);
    }

    /// <summary>The delta in the base weight's layout ([in, out] for a Conv1D).</summary>
    private Tensor StoredLayoutDelta(string adapterName)
    {
        var delta = DeltaWeight(adapterName);
        return baseLayer.Module is Conv1D ? delta.Transpose(0, 1).Contiguous() : delta;
    }

    private Tensor MergeableWeight(string op)
    {
        var weight = baseLayer.Module switch
        {
            Linear linear => linear.Weight,
            Conv1D conv => conv.Weight,
            var other => throw new NotSupportedException($"{op}: the base layer is a {other.GetType().Name}; merging needs a Linear or Conv1D with a float32 weight"),
        };
        if (weight.DType != DType.Float32)
            throw new NotSupportedException($"{op}: the base weight {weight} is {DTypeInfo.Name(weight.DType)}; merging into a reduced-precision weight is not supported");
        return weight;
    }
}
