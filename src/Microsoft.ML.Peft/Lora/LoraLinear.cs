using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// A linear layer with LoRA adapters (PEFT's <c>lora.Linear</c>): y = base(x) + Σ_active scaling_a · B_a(A_a(dropout_a(x)))
/// with A_a [r, in], B_a [out, r], the base layer frozen. Module names match PEFT's in-memory layout:
/// "base_layer", "lora_A.&lt;adapter&gt;", "lora_B.&lt;adapter&gt;", "lora_dropout.&lt;adapter&gt;".
/// </summary>
/// <remarks>
/// The forward never forms B·A: it computes the rank-r product x·Aᵀ first ([rows, r]), scales that small tensor,
/// and then multiplies by Bᵀ, costing r·(in + out) multiply-adds per row on top of the base layer's in·out.
/// Merging folds scaling·B·A into a float32 base weight (copying it first when it is memory-mapped checkpoint data,
/// which must not be written); each adapter can be merged once, and unmerging subtracts the same delta again.
/// A GPT-2 <see cref="Conv1D"/> base stores its weight [in, out] (PEFT's <c>fan_in_fan_out</c>), so the merge adds
/// the transpose (scaling·B·A)ᵀ there; A [r, in] and B [out, r] keep their shapes and saved keys either way.
/// </remarks>
public sealed class LoraLinear : LinearLayer, ITunerLayer
{
    private readonly ModuleSlot<LinearLayer> baseLayer;
    private readonly ModuleDict<Linear> loraA;
    private readonly ModuleDict<Linear> loraB;
    private readonly ModuleDict<Dropout> loraDropout;
    private readonly Dictionary<string, AdapterSettings> settings = new(StringComparer.Ordinal);
    private readonly List<string> active = [];
    private readonly List<string> merged = [];
    private bool enabled = true;

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet; add them with <see cref="UpdateLayer"/>).</summary>
    public LoraLinear(LinearLayer baseLayer)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is LoraLinear) throw new ArgumentException("cannot wrap a LoraLinear in another LoraLinear; add an adapter to it instead", nameof(baseLayer));
        this.baseLayer = RegisterModule("base_layer", baseLayer);
        loraDropout = RegisterModule("lora_dropout", new ModuleDict<Dropout>()).Module;
        loraA = RegisterModule("lora_A", new ModuleDict<Linear>()).Module;
        loraB = RegisterModule("lora_B", new ModuleDict<Linear>()).Module;
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

    /// <summary>A [r, in] of an adapter.</summary>
    public Tensor LoraA(string adapterName) => loraA[adapterName].Weight;

    /// <summary>B [out, r] of an adapter.</summary>
    public Tensor LoraB(string adapterName) => loraB[adapterName].Weight;

    /// <summary>The rank of an adapter.</summary>
    public int Rank(string adapterName) => Settings(adapterName).Rank;

    /// <summary>The alpha of an adapter.</summary>
    public double Alpha(string adapterName) => Settings(adapterName).Alpha;

    /// <summary>The scaling of an adapter: alpha/r, or alpha/√r with rsLoRA.</summary>
    public float Scaling(string adapterName) => Settings(adapterName).Scaling;

    /// <summary>
    /// Adds (or replaces the weights of) adapter <paramref name="adapterName"/> with the given rank, alpha, dropout
    /// and initialisation, as PEFT's <c>update_layer</c>. The new adapter's parameters are trainable; it is not
    /// activated. PiSSA changes the base weight to the residual (see <see cref="LoraInitKind.Pissa"/>).
    /// </summary>
    public void UpdateLayer(string adapterName, int rank, double alpha, double dropout, bool useRsLora, LoraInit init, Generator generator)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        ArgumentNullException.ThrowIfNull(init);
        ArgumentNullException.ThrowIfNull(generator);
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"LoRA rank must be a positive integer, got {rank}");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), $"LoRA dropout must be in [0, 1), got {dropout}");
        if (loraA.ContainsKey(adapterName)) throw new InvalidOperationException($"adapter '{adapterName}' already exists on this layer");
        if (merged.Count > 0) throw new InvalidOperationException($"cannot add adapter '{adapterName}' while adapters [{string.Join(", ", merged)}] are merged; unmerge first");

        float scaling = (float)(useRsLora ? alpha / Math.Sqrt(rank) : alpha / rank);
        Linear a, b;
        using (TensorScope.Untracked())
        {
            // nn.Linear's own init for both (Kaiming-uniform, a = √5); the chosen scheme then overwrites what it sets.
            a = new Linear(InFeatures, rank, generator, hasBias: false);
            b = new Linear(rank, OutFeatures, generator, hasBias: false);
        }
        using (Autograd.NoGrad())
        {
            switch (init.Kind)
            {
                case LoraInitKind.Default:
                    b.Weight.Zero_();
                    break;
                case LoraInitKind.Gaussian:
                    a.Weight.Normal_(generator, 0f, 1f / rank);
                    b.Weight.Zero_();
                    break;
                case LoraInitKind.Random:
                    break;
                case LoraInitKind.Pissa:
                    PissaInitializer.Initialize(this, a.Weight, b.Weight, scaling, init.PissaIterations, generator);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(init), init.Kind, "unknown LoRA initialisation");
            }
        }
        loraDropout.Add(adapterName, new Dropout((float)dropout, generator));
        loraA.Add(adapterName, a);
        loraB.Add(adapterName, b);
        settings[adapterName] = new AdapterSettings(rank, alpha, scaling);
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
            var x = loraDropout[name].Forward(input);
            // Rank-r first: (x·Aᵀ)·s is [rows, r], so the scaling costs r multiplies per row instead of out.
            var low = x.Linear(loraA[name].Weight).Mul(settings[name].Scaling);
            result = result.Add(low.Linear(loraB[name].Weight));
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
        loraA[adapterName].SetRequiresGrad(trainable);
        loraB[adapterName].SetRequiresGrad(trainable);
    }

    /// <summary>The weight update of one adapter, scaling·B·A [out, in] (a new tensor, not recorded).</summary>
    public Tensor DeltaWeight(string adapterName)
    {
        using (Autograd.NoGrad()) return loraB[adapterName].Weight.MatMul(loraA[adapterName].Weight).Mul(Settings(adapterName).Scaling);
    }

    /// <summary>
    /// True when the base layer stores its weight [in, out] (a GPT-2 <see cref="Conv1D"/>; PEFT's per-layer
    /// <c>fan_in_fan_out</c>), so merging adds the transpose of <see cref="DeltaWeight"/>.
    /// </summary>
    public bool FanInFanOut => baseLayer.Module is Conv1D;

    /// <summary>
    /// Adds scaling·B·A of each adapter (default: the active ones) into the base weight ((scaling·B·A)ᵀ for a
    /// <see cref="Conv1D"/> base, whose weight is [in, out]). Merging an adapter that is already merged is an error.
    /// With <paramref name="safeMerge"/> the sum is computed on a copy and checked for NaN/∞ before it replaces the
    /// weight. Needs a <see cref="Linear"/> or <see cref="Conv1D"/> base with a float32 weight.
    /// </summary>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false)
    {
        var names = adapterNames ?? active;
        if (!enabled) throw new InvalidOperationException("cannot merge while adapters are disabled: the forward would then apply the merged update to the 'base' output");
        var baseModule = MergeableBase("merge");
        foreach (var name in names)
        {
            _ = Settings(name);
            if (merged.Contains(name)) throw new InvalidOperationException($"adapter '{name}' is already merged into this layer; merging twice would add its update twice");
        }
        foreach (var name in names.ToList())
        {
            using (Autograd.NoGrad())
            {
                var delta = StoredLayoutDelta(name);
                if (safeMerge)
                {
                    Tensor sum;
                    using (TensorScope.Untracked()) sum = BaseWeight(baseModule).Add(delta);
                    if (!sum.AllFinite()) throw new InvalidOperationException($"merging adapter '{name}' produces NaN or infinite weights; the layer was left unchanged");
                    baseModule.ReplaceParameter("weight", sum);
                }
                else
                {
                    WritableWeight(baseModule).Add_(delta);
                }
            }
            merged.Add(name);
        }
    }

    /// <inheritdoc/>
    public void Unmerge()
    {
        if (merged.Count == 0) return;
        var baseModule = MergeableBase("unmerge");
        using (Autograd.NoGrad())
        {
            var weight = WritableWeight(baseModule);
            for (int i = merged.Count - 1; i >= 0; i--) weight.Add_(StoredLayoutDelta(merged[i]), -1f);
        }
        merged.Clear();
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        _ = Settings(adapterName);
        yield return ("lora_A.weight", loraA[adapterName].Weight);
        yield return ("lora_B.weight", loraB[adapterName].Weight);
    }

    /// <summary>
    /// The delta in the base weight's own layout: scaling·B·A [out, in] for a <see cref="Linear"/>, and for a
    /// <see cref="Conv1D"/> ([in, out]) its transpose, computed directly as scaling·Aᵀ·Bᵀ into a contiguous tensor so
    /// the in-place add walks both operands row by row.
    /// </summary>
    private Tensor StoredLayoutDelta(string adapterName)
    {
        if (!FanInFanOut) return DeltaWeight(adapterName);
        using (Autograd.NoGrad())
        {
            var a = loraA[adapterName].Weight;
            var b = loraB[adapterName].Weight;
            return a.Transpose(0, 1).MatMul(b.Transpose(0, 1)).Mul(Settings(adapterName).Scaling).Contiguous();
        }
    }

    /// <summary>The base (a <see cref="Linear"/> or <see cref="Conv1D"/>) after checking its weight is float32, or a clear error naming what it is.</summary>
    private Module MergeableBase(string op)
    {
        var module = baseLayer.Module;
        if (module is not (Linear or Conv1D))
            throw new NotSupportedException($"{op}: the base layer is a {module.GetType().Name}; merging needs a Linear or Conv1D with a float32 weight");
        var weight = BaseWeight(module);
        if (weight.DType != DType.Float32)
            throw new NotSupportedException($"{op}: the base weight {weight} is {DTypeInfo.Name(weight.DType)}; merging into a reduced-precision weight would round the update and unmerging could not restore it. Convert the base weight to float32 first.");
        return module;
    }

    /// <summary>The stored weight of a mergeable base: [out, in] for <see cref="Linear"/>, [in, out] for <see cref="Conv1D"/>.</summary>
    private static Tensor BaseWeight(Module module) => module is Conv1D conv ? conv.Weight : ((Linear)module).Weight;

    /// <summary>The base weight, first copied into engine-owned memory when it lives in a (read-only) checkpoint mapping.</summary>
    private static Tensor WritableWeight(Module module)
    {
        var weight = BaseWeight(module);
        if (weight.Storage is ExternalStorage || !weight.IsContiguous)
        {
            Tensor copy;
            using (TensorScope.Untracked()) copy = weight.Clone();
            module.ReplaceParameter("weight", copy);
        }
        return BaseWeight(module);
    }

    private AdapterSettings Settings(string adapterName) =>
        settings.TryGetValue(adapterName, out var s) ? s : throw new KeyNotFoundException($"adapter '{adapterName}' does not exist on this layer (adapters: {string.Join(", ", AdapterNames)})");

    private sealed record AdapterSettings(int Rank, double Alpha, float Scaling);
}
