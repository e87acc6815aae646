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
public sealed class LoraLinear : TunerLinearLayer
{
    private readonly ModuleDict<Linear> loraA;
    private readonly ModuleDict<Linear> loraB;
    private readonly ModuleDict<Dropout> loraDropout;
    private readonly ModuleDict<DoraMagnitude> loraMagnitude;
    private readonly ModuleDict<Linear> loraMixer;
    private readonly Dictionary<string, Tensor> doraMergedNorms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AdapterSettings> settings = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet; add them with <see cref="UpdateLayer"/>).</summary>
    public LoraLinear(LinearLayer baseLayer)
        : base(baseLayer)
    {
        loraDropout = RegisterModule("lora_dropout", new ModuleDict<Dropout>()).Module;
        loraA = RegisterModule("lora_A", new ModuleDict<Linear>()).Module;
        loraB = RegisterModule("lora_B", new ModuleDict<Linear>()).Module;
        loraMagnitude = RegisterModule("lora_magnitude_vector", new ModuleDict<DoraMagnitude>()).Module;
        loraMixer = RegisterModule("lora_AB", new ModuleDict<Linear>()).Module;
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> AdapterNames => loraA.Keys;

    /// <inheritdoc/>
    protected override bool HasAdapter(string adapterName) => loraA.ContainsKey(adapterName);

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

    /// <summary>Whether an adapter is DoRA (use_dora): it then has a <see cref="Magnitude"/> vector.</summary>
    public bool UsesDora(string adapterName) => loraMagnitude.ContainsKey(CheckedAdapter(adapterName));

    /// <summary>DoRA's magnitude m [out] of an adapter (use_dora only).</summary>
    public Tensor Magnitude(string adapterName) => loraMagnitude.ContainsKey(CheckedAdapter(adapterName))
        ? loraMagnitude[adapterName].Weight
        : throw new InvalidOperationException($"adapter '{adapterName}' is not a DoRA adapter (use_dora is false)");

    /// <summary>Whether an adapter has MoSLoRA's r×r mixer (lora_use_mixer).</summary>
    public bool UsesMixer(string adapterName) => loraMixer.ContainsKey(CheckedAdapter(adapterName));

    /// <summary>MoSLoRA's mixer M [r, r] of an adapter: the update is scaling·B·M·A.</summary>
    public Tensor Mixer(string adapterName) => loraMixer.ContainsKey(CheckedAdapter(adapterName))
        ? loraMixer[adapterName].Weight
        : throw new InvalidOperationException($"adapter '{adapterName}' has no MoSLoRA mixer (lora_use_mixer is false)");

    /// <summary>
    /// Adds (or replaces the weights of) adapter <paramref name="adapterName"/> with the given rank, alpha, dropout
    /// and initialisation, as PEFT's <c>update_layer</c>. The new adapter's parameters are trainable; it is not
    /// activated. PiSSA and OLoRA change the base weight to the residual (see <see cref="LoraInitKind.Pissa"/>, <see cref="LoraInitKind.Olora"/>).
    /// </summary>
    /// <param name="adapterName">The adapter's name.</param>
    /// <param name="rank">r.</param>
    /// <param name="alpha">lora_alpha.</param>
    /// <param name="dropout">lora_dropout.</param>
    /// <param name="useRsLora">Scaling alpha/√r instead of alpha/r.</param>
    /// <param name="init">How A and B start.</param>
    /// <param name="generator">Random source for the init and the dropout masks.</param>
    /// <param name="useDora">DoRA: adds the magnitude vector m = ‖W + scaling·B·A‖ per output row (after A, B are initialised).</param>
    /// <param name="mixerInit">MoSLoRA: adds a trainable r×r mixer between A and B, initialised as given; null for none.</param>
    public void UpdateLayer(string adapterName, int rank, double alpha, double dropout, bool useRsLora, LoraInit init, Generator generator,
        bool useDora = false, MoSLoraMixerInit? mixerInit = null)
    {
        CheckCanAddAdapter(adapterName);
        ArgumentNullException.ThrowIfNull(init);
        ArgumentNullException.ThrowIfNull(generator);
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"LoRA rank must be a positive integer, got {rank}");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), $"LoRA dropout must be in [0, 1), got {dropout}");

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
                case LoraInitKind.Olora:
                    OloraInitializer.Initialize(this, a.Weight, b.Weight, scaling);
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(init), init.Kind, "unknown LoRA initialisation");
            }
        }
        Linear? mixer = mixerInit is { } kind ? MoSLoraMixer.Create(rank, kind, generator) : null;
        DoraMagnitude? magnitude = null;
        if (useDora)
        {
            // PEFT's dora_init: the norm of the weight the adapter starts from, so DoRA is the identity at init.
            var effectiveB = mixer is null ? b.Weight : MixedB(b.Weight, mixer.Weight);
            Tensor norm;
            using (TensorScope.Untracked()) norm = DoraMagnitude.WeightNorm(DoraMagnitude.DenseWeight(Base), a.Weight, effectiveB, scaling).Clone();
            magnitude = new DoraMagnitude(norm);
        }
        loraDropout.Add(adapterName, new Dropout((float)dropout, generator));
        loraA.Add(adapterName, a);
        loraB.Add(adapterName, b);
        if (magnitude is not null) loraMagnitude.Add(adapterName, magnitude);
        if (mixer is not null) loraMixer.Add(adapterName, mixer);
        settings[adapterName] = new AdapterSettings(rank, alpha, scaling);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var result = Base.Forward(input);
        if (!AdaptersEnabled) return result;
        if (RowAdapters is not null) return AddPerRowAdapters(input, result);
        foreach (var name in UnmergedActiveAdapters())
        {
            var dropout = loraDropout[name];
            var x = dropout.Forward(input);
            if (loraMagnitude.ContainsKey(name))
            {
                // PEFT reuses the running output as DoRA's base result unless dropout changed the input.
                bool reuse = dropout.P == 0f || !dropout.IsTraining;
                result = result.Add(DoraTerm(name, x, reuse ? result : null));
                continue;
            }
            result = result.Add(LoraTerm(name, x));
        }
        return result;
    }

    /// <summary>
    /// The adapter of each batch row (first input dimension) for mixed-batch inference, or null for the active adapters
    /// (set through <see cref="LoraMixedBatch.UseAdapterPerRow"/>; null or "__base__" rows get the base layer only).
    /// </summary>
    internal IReadOnlyList<string?>? RowAdapters { get; set; }

    /// <summary>scaling·B(A(x)) (with MoSLoRA's mixer between A and B when the adapter has one).</summary>
    private Tensor LoraTerm(string name, Tensor x)
    {
        // Rank-r first: (x·Aᵀ)·s is [rows, r], so the scaling costs r multiplies per row instead of out.
        var low = x.Linear(loraA[name].Weight).Mul(settings[name].Scaling);
        if (loraMixer.ContainsKey(name)) low = low.Linear(loraMixer[name].Weight);
        return low.Linear(loraB[name].Weight);
    }

    /// <summary>
    /// Mixed batch (PEFT's <c>adapter_names</c>): each adapter's term is computed for the batch and kept only on its
    /// own rows by a 0/1 row mask. x·1 = x and y + 0 = y exactly, so every row equals a run with its adapter alone (as long
    /// as every adapter's term is finite: 0·∞ is NaN). Each adapter's term is computed over the whole batch, so k distinct
    /// adapters cost k adapter passes; gathering each adapter's rows first would cost one.
    /// </summary>
    private Tensor AddPerRowAdapters(Tensor input, Tensor result)
    {
        var rows = RowAdapters!;
        int batch = input.ShapeArray()[0];
        if (rows.Count != batch)
            throw new ArgumentException($"mixed-batch adapters name {rows.Count} rows but the input {input} of this LoRA layer has {batch} in its first dimension");
        var maskShape = input.ShapeArray();
        for (int d = 1; d < maskShape.Length; d++) maskShape[d] = 1;
        foreach (var name in rows.Distinct().OfType<string>())
        {
            if (!loraA.ContainsKey(name)) continue;   // not on this layer (or "__base__"): base output only
            if (IsMerged(name)) throw new InvalidOperationException($"adapter '{name}' is merged; mixed-batch inference needs unmerged adapters");
            var mask = new float[batch];
            for (int r = 0; r < batch; r++) mask[r] = rows[r] == name ? 1f : 0f;
            var term = loraMagnitude.ContainsKey(name) ? DoraTerm(name, input, result) : LoraTerm(name, input);
            result = result.Add(term.Mul(Tensor.From(mask, maskShape)));
        }
        return result;
    }

    /// <inheritdoc/>
    public override void SetAdapterTrainable(string adapterName, bool trainable)
    {
        loraA[adapterName].SetRequiresGrad(trainable);
        loraB[adapterName].SetRequiresGrad(trainable);
        if (loraMagnitude.ContainsKey(adapterName)) loraMagnitude[adapterName].SetRequiresGrad(trainable);
        if (loraMixer.ContainsKey(adapterName)) loraMixer[adapterName].SetRequiresGrad(trainable);
    }

    /// <summary>
    /// DoRA's addition for adapter <paramref name="adapterName"/> given its (dropped-out) input: see
    /// <see cref="DoraMagnitude.Forward"/>. Internal so tests can feed a fixed dropout mask.
    /// </summary>
    internal Tensor DoraTerm(string adapterName, Tensor x, Tensor? baseResult) =>
        loraMagnitude[adapterName].Forward(x, loraA[adapterName].Weight, loraB[adapterName].Weight,
            loraMixer.ContainsKey(adapterName) ? loraMixer[adapterName].Weight : null, Settings(adapterName).Scaling, Base, baseResult);

    /// <summary>B, or B·M with a MoSLoRA mixer (so the update is always scaling·EffectiveB·A).</summary>
    private Tensor EffectiveB(string adapterName) =>
        loraMixer.ContainsKey(adapterName) ? MixedB(loraB[adapterName].Weight, loraMixer[adapterName].Weight) : loraB[adapterName].Weight;

    private static Tensor MixedB(Tensor b, Tensor mixer) => b.MatMul(mixer);

    /// <summary>The weight update of one adapter, scaling·B·A [out, in] (a new tensor, not recorded).</summary>
    public Tensor DeltaWeight(string adapterName)
    {
        using (Autograd.NoGrad()) return EffectiveB(adapterName).MatMul(loraA[adapterName].Weight).Mul(Settings(adapterName).Scaling);
    }

    /// <summary>
    /// Adds scaling·B·A into the base weight ((scaling·B·A)ᵀ for a <see cref="Conv1D"/> base, whose weight is
    /// [in, out]); a DoRA adapter rescales the rows as PEFT's DoRA merge. Needs a float32 Linear or Conv1D base.
    /// </summary>
    protected override void MergeAdapter(string adapterName, bool safeMerge)
    {
        var baseModule = MergeableBase("merge");
        ForgetDoraNorms();
        using (Autograd.NoGrad())
        {
            var delta = StoredLayoutDelta(adapterName);
            if (loraMagnitude.ContainsKey(adapterName)) MergeDora(baseModule, adapterName, delta, safeMerge);
            else AddToBaseWeight(adapterName, delta, 1f, safeMerge);
        }
    }

    /// <inheritdoc/>
    protected override void UnmergeAdapter(string adapterName)
    {
        var baseModule = MergeableBase("unmerge");
        ForgetDoraNorms();
        using (Autograd.NoGrad())
        {
            if (!loraMagnitude.ContainsKey(adapterName))
            {
                AddToBaseWeight(adapterName, StoredLayoutDelta(adapterName), -1f, safeMerge: false);
                return;
            }
            // PEFT's DoRA unmerge: W = W' / (m / cached norm) − delta, with the norm cached at merge time.
            Tensor restored;
            using (TensorScope.Untracked())
            {
                var factor = RowFactor(loraMagnitude[adapterName].Weight.Div(doraMergedNorms[adapterName]));
                restored = StoredBaseWeight(baseModule).Div(factor).Sub(StoredLayoutDelta(adapterName));
            }
            baseModule.ReplaceParameter("weight", restored);
            doraMergedNorms.Remove(adapterName);
        }
    }

    /// <summary>
    /// PEFT's DoRA merge: W' = (m / ‖W + delta‖)·(W + delta) per output row, the norm cached for the unmerge.
    /// <paramref name="delta"/> is in the stored layout ([in, out] for a Conv1D, whose output rows are columns).
    /// </summary>
    private void MergeDora(Module baseModule, string name, Tensor delta, bool safeMerge)
    {
        Tensor mergedWeight, norm;
        using (TensorScope.Untracked())
        {
            var adapted = StoredBaseWeight(baseModule).Add(delta);
            norm = adapted.Mul(adapted).Sum(FanInFanOut ? 0 : 1).Sqrt();
            mergedWeight = adapted.Mul(RowFactor(loraMagnitude[name].Weight.Div(norm)));
        }
        if (safeMerge && !mergedWeight.AllFinite()) throw new InvalidOperationException($"merging adapter '{name}' produces NaN or infinite weights; the layer was left unchanged");
        baseModule.ReplaceParameter("weight", mergedWeight);
        doraMergedNorms[name] = norm;
    }

    /// <summary>
    /// Drops every DoRA adapter's cached weight norm: a merge changes or replaces the base weight, and the cache would
    /// otherwise keep the replaced weight alive until the next forward (it would not be used: its key no longer matches).
    /// </summary>
    private void ForgetDoraNorms()
    {
        foreach (var name in loraMagnitude.Keys) loraMagnitude[name].ClearNormCache();
    }

    /// <summary>A per-output-row factor [out] shaped to broadcast over the stored weight: [out, 1], or [1, out] for a Conv1D.</summary>
    private Tensor RowFactor(Tensor factor) => FanInFanOut ? factor.Reshape(1, OutFeatures) : factor.Reshape(OutFeatures, 1);

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        _ = Settings(adapterName);
        yield return ("lora_A.weight", loraA[adapterName].Weight);
        yield return ("lora_B.weight", loraB[adapterName].Weight);
        // PEFT saves the magnitude without its module's ".weight" (the format predates DoraLinearLayer).
        if (loraMagnitude.ContainsKey(adapterName)) yield return ("lora_magnitude_vector", loraMagnitude[adapterName].Weight);
        if (loraMixer.ContainsKey(adapterName)) yield return ("lora_AB.weight", loraMixer[adapterName].Weight);
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
            var b = EffectiveB(adapterName);
            return a.Transpose(0, 1).MatMul(b.Transpose(0, 1)).Mul(Settings(adapterName).Scaling).Contiguous();
        }
    }

    private AdapterSettings Settings(string adapterName) =>
        settings.TryGetValue(adapterName, out var s) ? s : throw UnknownAdapter(adapterName);

    private sealed record AdapterSettings(int Rank, double Alpha, float Scaling);
}
