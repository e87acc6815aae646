using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.IA3;

/// <summary>
/// A linear layer with (IA)³ adapters (PEFT's <c>ia3.Linear</c>). Each adapter is one learned vector l: for an
/// ordinary target (keys, values) it rescales the output, y = base(x) ⊙ l with l [out, 1] (the bias is scaled too);
/// for a feed-forward target it rescales the input, y = base(x ⊙ l) with l [1, in]. Several active adapters multiply.
/// In-memory names follow PEFT: "base_layer", "ia3_l.&lt;adapter&gt;".
/// </summary>
/// <remarks>
/// The forward costs one broadcast multiply of the [rows, out] output (or [rows, in] input) on top of the base layer.
/// Merging multiplies the weight's rows (output scaling, and the bias) or columns (input scaling) by l; unmerging
/// divides by l + 1e-8 exactly as PEFT does, so a vector with zeros cannot be unmerged exactly.
/// </remarks>
public sealed class IA3Linear : LinearLayer, ITunerLayer
{
    /// <summary>PEFT adds this to l before dividing on unmerge (ia3/layer.py), guarding against division by zero.</summary>
    private const float UnmergeEpsilon = 1e-8f;

    private readonly ModuleSlot<LinearLayer> baseLayer;
    private readonly ParameterDict vectors;
    private readonly List<string> active = [];
    private readonly List<string> merged = [];
    private bool enabled = true;

    /// <summary>Wraps <paramref name="baseLayer"/>; <paramref name="isFeedForward"/> picks input-side scaling.</summary>
    public IA3Linear(LinearLayer baseLayer, bool isFeedForward)
    {
        ArgumentNullException.ThrowIfNull(baseLayer);
        if (baseLayer is IA3Linear) throw new ArgumentException("cannot wrap an IA3Linear in another IA3Linear; add an adapter to it instead", nameof(baseLayer));
        this.baseLayer = RegisterModule("base_layer", baseLayer);
        vectors = RegisterModule("ia3_l", new ParameterDict()).Module;
        IsFeedForward = isFeedForward;
    }

    /// <summary>Whether the vector scales the input ([1, in]) rather than the output ([out, 1]).</summary>
    public bool IsFeedForward { get; }

    /// <summary>The wrapped layer.</summary>
    public LinearLayer Base => baseLayer.Module;

    /// <inheritdoc/>
    Module ITunerLayer.BaseLayer => baseLayer.Module;

    /// <inheritdoc/>
    public override int InFeatures => baseLayer.Module.InFeatures;

    /// <inheritdoc/>
    public override int OutFeatures => baseLayer.Module.OutFeatures;

    /// <inheritdoc/>
    public IReadOnlyList<string> AdapterNames => vectors.Keys;

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

    /// <summary>The vector of an adapter: [out, 1], or [1, in] for a feed-forward layer (PEFT's shapes).</summary>
    public Tensor Vector(string adapterName) => vectors[adapterName];

    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> (PEFT's <c>update_layer</c>): ones when <paramref name="initOnes"/>
    /// (init_ia3_weights = true, the identity), otherwise standard normal draws. Trainable, not activated.
    /// </summary>
    public void UpdateLayer(string adapterName, bool initOnes, Generator generator)
    {
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        ArgumentNullException.ThrowIfNull(generator);
        if (vectors.ContainsKey(adapterName)) throw new InvalidOperationException($"adapter '{adapterName}' already exists on this layer");
        if (merged.Count > 0) throw new InvalidOperationException($"cannot add adapter '{adapterName}' while adapters [{string.Join(", ", merged)}] are merged; unmerge first");
        int[] shape = IsFeedForward ? [1, InFeatures] : [OutFeatures, 1];
        Tensor l;
        using (TensorScope.Untracked()) l = initOnes ? Tensor.Ones(shape) : Tensor.Randn(generator, shape);
        vectors.Add(adapterName, l);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var scaling = Scaling();
        if (scaling is null) return baseLayer.Module.Forward(input);
        // The [1, n] row broadcasts over every leading dimension of the [..., n] activations.
        return IsFeedForward
            ? baseLayer.Module.Forward(input.Mul(scaling))
            : baseLayer.Module.Forward(input).Mul(scaling);
    }

    /// <inheritdoc/>
    public void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false)
    {
        ArgumentNullException.ThrowIfNull(adapterNames);
        var chosen = new List<string>();
        foreach (var name in adapterNames)
        {
            if (vectors.ContainsKey(name)) chosen.Add(name);
            else if (!ignoreMissing) throw new KeyNotFoundException($"adapter '{name}' does not exist on this layer (adapters: {string.Join(", ", AdapterNames)})");
        }
        if (merged.Count > 0) Unmerge();
        active.Clear();
        active.AddRange(chosen);
        foreach (var name in AdapterNames) SetAdapterTrainable(name, trainable && enabled && active.Contains(name));
    }

    /// <inheritdoc/>
    public void SetAdapterTrainable(string adapterName, bool trainable) => vectors[adapterName].RequiresGrad = trainable;

    /// <summary>
    /// Multiplies each adapter's vector (default: the active ones) into the base weight: rows (and the bias) for an
    /// output-scaling layer, columns for a feed-forward layer. With <paramref name="safeMerge"/> the product is
    /// checked for NaN/∞ before it replaces the weight. Needs a <see cref="Linear"/> base with a float32 weight.
    /// </summary>
    public void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false)
    {
        var names = adapterNames ?? active;
        if (!enabled) throw new InvalidOperationException("cannot merge while adapters are disabled");
        var linear = MergeableBase("merge");
        foreach (var name in names)
        {
            _ = vectors[name];
            if (merged.Contains(name)) throw new InvalidOperationException($"adapter '{name}' is already merged into this layer; merging twice would scale twice");
        }
        foreach (var name in names.ToList())
        {
            using (Autograd.NoGrad())
            using (TensorScope.Untracked())
            {
                var l = vectors[name];
                var weight = linear.Weight.Mul(l);
                var bias = !IsFeedForward && linear.Bias is { } b ? b.Mul(l.Reshape(OutFeatures)) : null;
                if (safeMerge && (!weight.AllFinite() || bias?.AllFinite() == false))
                    throw new InvalidOperationException($"merging adapter '{name}' produces NaN or infinite weights; the layer was left unchanged");
                linear.ReplaceParameter("weight", weight);
                if (bias is not null) linear.ReplaceParameter("bias", bias);
            }
            merged.Add(name);
        }
    }

    /// <inheritdoc/>
    public void Unmerge()
    {
        if (merged.Count == 0) return;
        var linear = MergeableBase("unmerge");
        for (int i = merged.Count - 1; i >= 0; i--)
        {
            using (Autograd.NoGrad())
            using (TensorScope.Untracked())
            {
                var divisor = vectors[merged[i]].Add(UnmergeEpsilon);
                linear.ReplaceParameter("weight", linear.Weight.Div(divisor));
                if (!IsFeedForward && linear.Bias is { } b) linear.ReplaceParameter("bias", b.Div(divisor.Reshape(OutFeatures)));
            }
        }
        merged.Clear();
    }

    /// <inheritdoc/>
    public IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        var l = vectors[adapterName];
        yield return ("ia3_l", l);
    }

    /// <summary>The product of the active, unmerged vectors, or null when there is nothing to apply.</summary>
    private Tensor? Scaling()
    {
        if (!enabled) return null;
        Tensor? scaling = null;
        foreach (var name in active)
        {
            if (merged.Contains(name)) continue;
            var l = vectors[name];
            // [out, 1] → [out] so it broadcasts against [..., out]; [1, in] broadcasts as is.
            if (!IsFeedForward) l = l.Reshape(OutFeatures);
            scaling = scaling is null ? l : scaling.Mul(l);
        }
        return scaling;
    }

    private Linear MergeableBase(string op)
    {
        if (baseLayer.Module is not Linear linear)
            throw new NotSupportedException($"{op}: the base layer is a {baseLayer.Module.GetType().Name}; merging needs a Linear with a float32 weight");
        if (linear.Weight.DType != DType.Float32)
            throw new NotSupportedException($"{op}: the base weight {linear.Weight} is {DTypeInfo.Name(linear.Weight.DType)}; merging (IA)³ into a reduced-precision weight is not supported. Convert the base weight to float32 first.");
        return linear;
    }
}
