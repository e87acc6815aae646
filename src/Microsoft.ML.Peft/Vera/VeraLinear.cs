using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Vera;

/// <summary>
/// A linear layer with VeRA adapters (PEFT's <c>vera.Linear</c>; Kopiczko et al. 2024): y = base(x) +
/// λ_b ⊙ (B_s·(λ_d ⊙ (A_s·x))), where A [r, in_max] and B [out_max, r] are frozen random matrices shared by every
/// layer of the adapter (A_s = A[:, :in], B_s = B[:out, :] are slices) and only λ_d [r] and λ_b [out] are trained.
/// In-memory names follow PEFT: "vera_lambda_d.&lt;adapter&gt;", "vera_lambda_b.&lt;adapter&gt;" (saved as
/// "…vera_lambda_d" / "…vera_lambda_b").
/// </summary>
/// <remarks>
/// The shared matrices are plain fields (PEFT keeps them as buffers, not parameters), so they are neither trained nor
/// counted. The forward is rank-r first: x·A_sᵀ [rows, r], scaled by λ_d, times B_sᵀ, scaled by λ_b. λ_b starts at zero,
/// so the adapter is the identity at init. Merging adds (λ_b ⊙ B_s)·(λ_d ⊙ A_s) to a float32 Linear/Conv1D weight.
/// </remarks>
public sealed class VeraLinear : TunerLinearLayer
{
    private readonly ModuleDict<Dropout> dropouts;
    private readonly ParameterDict lambdaB;
    private readonly ParameterDict lambdaD;
    private readonly Dictionary<string, (Tensor A, Tensor B)> projections = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet; add them with <see cref="UpdateLayer"/>).</summary>
    public VeraLinear(LinearLayer baseLayer)
        : base(baseLayer)
    {
        if (baseLayer is ITunerLayer) throw new ArgumentException($"cannot wrap a {baseLayer.GetType().Name} in a VeraLinear", nameof(baseLayer));
        dropouts = RegisterModule("vera_dropout", new ModuleDict<Dropout>()).Module;
        lambdaB = RegisterModule("vera_lambda_b", new ParameterDict()).Module;
        lambdaD = RegisterModule("vera_lambda_d", new ParameterDict()).Module;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> AdapterNames => lambdaD.Keys;

    /// <inheritdoc/>
    protected override bool HasAdapter(string adapterName) => lambdaD.ContainsKey(adapterName);

    /// <summary>λ_d [r].</summary>
    public Tensor LambdaD(string adapterName) => lambdaD[adapterName];

    /// <summary>λ_b [out].</summary>
    public Tensor LambdaB(string adapterName) => lambdaB[adapterName];

    /// <summary>The shared frozen projections (full size A [r, in_max], B [out_max, r]) of an adapter.</summary>
    public (Tensor A, Tensor B) SharedProjections(string adapterName) => projections[adapterName];

    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> over the shared <paramref name="sharedA"/> [r, ≥ in] and
    /// <paramref name="sharedB"/> [≥ out, r] (PEFT's <c>update_layer</c>): with <paramref name="initWeights"/>
    /// λ_d = d_initial and λ_b = 0, otherwise λ_d ~ N(0, 1) and λ_b = 1 (PEFT's raw Parameter init). Trainable, not active.
    /// </summary>
    public void UpdateLayer(string adapterName, Tensor sharedA, Tensor sharedB, double dropout, bool initWeights, double dInitial, Generator generator)
    {
        CheckCanAddAdapter(adapterName);
        ArgumentNullException.ThrowIfNull(sharedA);
        ArgumentNullException.ThrowIfNull(sharedB);
        ArgumentNullException.ThrowIfNull(generator);
        int r = sharedA.Size(0);
        if (sharedA.Rank != 2 || sharedA.Size(1) < InFeatures)
            throw new ArgumentException($"VeRA: shared A {sharedA} is too small for in_features {InFeatures}", nameof(sharedA));
        if (sharedB.Rank != 2 || sharedB.Size(0) < OutFeatures || sharedB.Size(1) != r)
            throw new ArgumentException($"VeRA: shared B {sharedB} does not fit out_features {OutFeatures} and r {r}", nameof(sharedB));
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), $"vera_dropout must be in [0, 1), got {dropout}");
        Tensor d, b;
        using (TensorScope.Untracked())
        {
            d = initWeights ? Tensor.Full((float)dInitial, r) : Tensor.Randn(generator, r);
            b = initWeights ? Tensor.Zeros(OutFeatures) : Tensor.Ones(OutFeatures);
        }
        dropouts.Add(adapterName, new Dropout((float)dropout, generator));
        lambdaB.Add(adapterName, b);
        lambdaD.Add(adapterName, d);
        projections[adapterName] = (sharedA, sharedB);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var result = Base.Forward(input);
        if (!AdaptersEnabled) return result;
        foreach (var name in UnmergedActiveAdapters())
        {
            var (a, b) = Sliced(name);
            var x = dropouts[name].Forward(input);
            var low = x.Linear(a).Mul(lambdaD[name]);
            result = result.Add(low.Linear(b).Mul(lambdaB[name]));
        }
        return result;
    }

    /// <inheritdoc/>
    public override void SetAdapterTrainable(string adapterName, bool trainable)
    {
        lambdaD[adapterName].RequiresGrad = trainable;
        lambdaB[adapterName].RequiresGrad = trainable;
    }

    /// <summary>The update (λ_b ⊙ B_s)·(λ_d ⊙ A_s) [out, in] (a new tensor, not recorded).</summary>
    public Tensor DeltaWeight(string adapterName)
    {
        using (Autograd.NoGrad())
        {
            var (a, b) = Sliced(adapterName);
            var scaledB = b.Mul(lambdaB[adapterName].Reshape(OutFeatures, 1));
            var scaledA = a.Mul(lambdaD[adapterName].Reshape(a.Size(0), 1));
            return scaledB.MatMul(scaledA);
        }
    }

    /// <inheritdoc/>
    protected override void MergeAdapter(string adapterName, bool safeMerge) =>
        AddToBaseWeight(adapterName, ToStoredLayout(DeltaWeight(adapterName)), 1f, safeMerge);

    /// <inheritdoc/>
    protected override void UnmergeAdapter(string adapterName) =>
        AddToBaseWeight(adapterName, ToStoredLayout(DeltaWeight(adapterName)), -1f, safeMerge: false);

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        _ = lambdaD[adapterName];
        yield return ("vera_lambda_b", lambdaB[adapterName]);
        yield return ("vera_lambda_d", lambdaD[adapterName]);
    }

    /// <summary>A_s = A[:, :in] and B_s = B[:out, :] (views).</summary>
    private (Tensor A, Tensor B) Sliced(string adapterName)
    {
        var (a, b) = projections[adapterName];
        return (a.Narrow(1, 0, InFeatures), b.Narrow(0, 0, OutFeatures));
    }
}
