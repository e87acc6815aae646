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
public sealed class AdaLoraLinear : TunerLinearLayer
{
    /// <summary>PEFT adds this to ranknum before dividing (adalora/layer.py).</summary>
    private const float RankEpsilon = 1e-5f;

    private readonly ModuleDict<Dropout> dropouts;
    private readonly ParameterDict loraE;
    private readonly ParameterDict loraA;
    private readonly ParameterDict loraB;
    private readonly ParameterDict rankNum;
    private readonly Dictionary<string, double> alphas = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet; add them with <see cref="UpdateLayer"/>).</summary>
    public AdaLoraLinear(LinearLayer baseLayer)
        : base(baseLayer)
    {
        if (baseLayer is ITunerLayer) throw new ArgumentException($"cannot wrap a {baseLayer.GetType().Name} in an AdaLoraLinear", nameof(baseLayer));
        dropouts = RegisterModule("lora_dropout", new ModuleDict<Dropout>()).Module;
        loraE = RegisterModule("lora_E", new ParameterDict()).Module;
        loraA = RegisterModule("lora_A", new ParameterDict()).Module;
        loraB = RegisterModule("lora_B", new ParameterDict()).Module;
        rankNum = RegisterModule("ranknum", new ParameterDict()).Module;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> AdapterNames => loraA.Keys;

    /// <inheritdoc/>
    protected override bool HasAdapter(string adapterName) => loraA.ContainsKey(adapterName);

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
        CheckCanAddAdapter(adapterName);
        ArgumentNullException.ThrowIfNull(generator);
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"AdaLoRA init_r must be a positive integer, got {rank}");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), $"lora_dropout must be in [0, 1), got {dropout}");
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
        var result = Base.Forward(input);
        if (!AdaptersEnabled) return result;
        foreach (var name in UnmergedActiveAdapters())
        {
            var x = dropouts[name].Forward(input);
            var low = x.Linear(loraA[name].Mul(loraE[name])).Mul(Scaling(name));
            result = result.Add(low.Linear(loraB[name]));
        }
        return result;
    }

    /// <inheritdoc/>
    public override void SetAdapterTrainable(string adapterName, bool trainable)
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
    protected override void MergeAdapter(string adapterName, bool safeMerge) =>
        AddToBaseWeight(adapterName, ToStoredLayout(DeltaWeight(adapterName)), 1f, safeMerge);

    /// <inheritdoc/>
    protected override void UnmergeAdapter(string adapterName) =>
        AddToBaseWeight(adapterName, ToStoredLayout(DeltaWeight(adapterName)), -1f, safeMerge: false);

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        _ = loraA[adapterName];
        yield return ("lora_A", loraA[adapterName]);
        yield return ("lora_B", loraB[adapterName]);
        yield return ("lora_E", loraE[adapterName]);
    }
}
