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
public sealed class IA3Linear : TunerLinearLayer
{
    /// <summary>PEFT adds this to l before dividing on unmerge (ia3/layer.py), guarding against division by zero.</summary>
    private const float UnmergeEpsilon = 1e-8f;

    private readonly ParameterDict vectors;

    /// <summary>Wraps <paramref name="baseLayer"/>; <paramref name="isFeedForward"/> picks input-side scaling.</summary>
    public IA3Linear(LinearLayer baseLayer, bool isFeedForward)
        : base(baseLayer)
    {
        vectors = RegisterModule("ia3_l", new ParameterDict()).Module;
        IsFeedForward = isFeedForward;
    }

    /// <summary>Whether the vector scales the input ([1, in]) rather than the output ([out, 1]).</summary>
    public bool IsFeedForward { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> AdapterNames => vectors.Keys;

    /// <inheritdoc/>
    protected override bool HasAdapter(string adapterName) => vectors.ContainsKey(adapterName);

    /// <summary>The vector of an adapter: [out, 1], or [1, in] for a feed-forward layer (PEFT's shapes).</summary>
    public Tensor Vector(string adapterName) => vectors[adapterName];

    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> (PEFT's <c>update_layer</c>): ones when <paramref name="initOnes"/>
    /// (init_ia3_weights = true, the identity), otherwise standard normal draws. Trainable, not activated.
    /// </summary>
    public void UpdateLayer(string adapterName, bool initOnes, Generator generator)
    {
        CheckCanAddAdapter(adapterName);
        ArgumentNullException.ThrowIfNull(generator);
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
        if (scaling is null) return Base.Forward(input);
        // The [1, n] row broadcasts over every leading dimension of the [..., n] activations.
        return IsFeedForward
            ? Base.Forward(input.Mul(scaling))
            : Base.Forward(input).Mul(scaling);
    }

    /// <inheritdoc/>
    public override void SetAdapterTrainable(string adapterName, bool trainable) => vectors[adapterName].RequiresGrad = trainable;

    /// <summary>
    /// Multiplies the adapter's vector into the base weight: rows (and the bias) for an output-scaling layer, columns
    /// for a feed-forward layer. Needs a <see cref="Linear"/> base with a float32 weight.
    /// </summary>
    protected override void MergeAdapter(string adapterName, bool safeMerge)
    {
        var linear = MergeableLinear("merge");
        using (Autograd.NoGrad())
        using (TensorScope.Untracked())
        {
            var l = vectors[adapterName];
            var weight = linear.Weight.Mul(l);
            var bias = !IsFeedForward && linear.Bias is { } b ? b.Mul(l.Reshape(OutFeatures)) : null;
            if (safeMerge && (!weight.AllFinite() || bias?.AllFinite() == false))
                throw new InvalidOperationException($"merging adapter '{adapterName}' produces NaN or infinite weights; the layer was left unchanged");
            linear.ReplaceParameter("weight", weight);
            if (bias is not null) linear.ReplaceParameter("bias", bias);
        }
    }

    /// <summary>Divides the vector out again (by l + 1e-8, as PEFT).</summary>
    protected override void UnmergeAdapter(string adapterName)
    {
        var linear = MergeableLinear("unmerge");
        using (Autograd.NoGrad())
        using (TensorScope.Untracked())
        {
            var divisor = vectors[adapterName].Add(UnmergeEpsilon);
            linear.ReplaceParameter("weight", linear.Weight.Div(divisor));
            if (!IsFeedForward && linear.Bias is { } b) linear.ReplaceParameter("bias", b.Div(divisor.Reshape(OutFeatures)));
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        var l = vectors[adapterName];
        yield return ("ia3_l", l);
    }

    /// <summary>The product of the active, unmerged vectors, or null when there is nothing to apply.</summary>
    private Tensor? Scaling()
    {
        if (!AdaptersEnabled) return null;
        Tensor? scaling = null;
        foreach (var name in UnmergedActiveAdapters())
        {
            var l = vectors[name];
            // [out, 1] → [out] so it broadcasts against [..., out]; [1, in] broadcasts as is.
            if (!IsFeedForward) l = l.Reshape(OutFeatures);
            scaling = scaling is null ? l : scaling.Mul(l);
        }
        return scaling;
    }

    /// <summary>(IA)³ scales the bias too, so only a <see cref="Linear"/> base (with a float32 weight) can take a merge.</summary>
    private Linear MergeableLinear(string op) => MergeableBase(op) as Linear
        ?? throw new NotSupportedException($"{op}: the base layer is a {Base.GetType().Name}; merging (IA)³ needs a Linear with a float32 weight");
}
