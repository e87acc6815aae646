using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lycoris;

/// <summary>
/// What LoHa and LoKr share (PEFT's <c>LycorisLayer</c> for Linear targets): y = base(x) + Σ_active ΔW_a·x, where each
/// method builds its ΔW from small factors held in ParameterDicts named as PEFT's ("hada_w1_a.&lt;adapter&gt;", ...,
/// saved without the adapter name), with PEFT's two dropouts while training: module_dropout skips an adapter for a
/// whole forward with that probability, rank_dropout zeroes rows of ΔW (output features), optionally rescaled by the
/// mean of the kept mask.
/// </summary>
/// <remarks>
/// Dropping row i of ΔW is the same as zeroing output feature i of ΔW·x, so the mask multiplies the [rows, out]
/// activations and ΔW itself is never copied. Merging adds ΔW (scaled, no dropout) to a float32 Linear/Conv1D weight.
/// </remarks>
public abstract class LycorisLinear : TunerLinearLayer
{
    private readonly List<(string Name, ParameterDict Dict)> parameterDicts = [];
    private readonly Dictionary<string, LycorisAdapterSettings> settings = new(StringComparer.Ordinal);
    private readonly List<string> names = [];

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet); a layer that already carries adapters is refused.</summary>
    protected LycorisLinear(LinearLayer baseLayer)
        : base(baseLayer)
    {
        if (baseLayer is ITunerLayer) throw new ArgumentException($"cannot wrap a {baseLayer.GetType().Name} in a {GetType().Name}", nameof(baseLayer));
    }

    /// <inheritdoc/>
    public override IReadOnlyList<string> AdapterNames => names;

    /// <summary>r of an adapter.</summary>
    public int Rank(string adapterName) => Settings(adapterName).Rank;

    /// <summary>alpha of an adapter.</summary>
    public double Alpha(string adapterName) => Settings(adapterName).Alpha;

    /// <summary>The scaling alpha / r that multiplies ΔW.</summary>
    public float Scaling(string adapterName) => Settings(adapterName).Scaling;

    /// <summary>How many trainable numbers an adapter adds to this layer.</summary>
    public long ParameterCount(string adapterName) => AdapterTensors(adapterName).Sum(t => (long)t.Tensor.Count);

    /// <summary>The update ΔW [out, in] of an adapter, scaling included, without dropout (a new tensor, not recorded).</summary>
    public Tensor DeltaWeight(string adapterName)
    {
        _ = Settings(adapterName);
        using (Autograd.NoGrad()) return ComputeDeltaWeight(adapterName);
    }

    /// <summary>ΔW [out, in] of an adapter with scaling, recorded when its factors require grad.</summary>
    protected abstract Tensor ComputeDeltaWeight(string adapterName);

    /// <summary>ΔW·x for input [..., in] (scaling included, no dropout), recorded; methods may avoid forming ΔW.</summary>
    protected virtual Tensor DeltaActivations(string adapterName, Tensor x) => x.Linear(ComputeDeltaWeight(adapterName));

    /// <inheritdoc/>
    protected override bool HasAdapter(string adapterName) => settings.ContainsKey(adapterName);

    /// <summary>Registers a per-adapter parameter dictionary under PEFT's name (also the saved key suffix).</summary>
    private protected ParameterDict AddParameterDict(string name)
    {
        var dict = RegisterModule(name, new ParameterDict()).Module;
        parameterDicts.Add((name, dict));
        return dict;
    }

    /// <summary>Records a new adapter's hyper-parameters after its tensors have been added to the dictionaries.</summary>
    protected void AddAdapterSettings(string adapterName, int rank, double alpha, double rankDropout, double moduleDropout, bool rescaleRankDropout, Generator generator)
    {
        ArgumentNullException.ThrowIfNull(generator);
        settings[adapterName] = new LycorisAdapterSettings(rank, alpha, (float)(alpha / rank), rankDropout, moduleDropout, rescaleRankDropout, generator);
        names.Add(adapterName);
    }

    /// <summary>Checks r, rank_dropout and module_dropout of a new adapter (and its name) before anything is created.</summary>
    protected void CheckNewAdapter(string adapterName, int rank, double rankDropout, double moduleDropout, Generator generator)
    {
        CheckCanAddAdapter(adapterName);
        ArgumentNullException.ThrowIfNull(generator);
        if (rank <= 0) throw new ArgumentOutOfRangeException(nameof(rank), $"r must be a positive integer, got {rank}");
        if (!(rankDropout >= 0 && rankDropout < 1)) throw new ArgumentOutOfRangeException(nameof(rankDropout), $"rank_dropout must be in [0, 1), got {rankDropout}");
        if (!(moduleDropout >= 0 && moduleDropout < 1)) throw new ArgumentOutOfRangeException(nameof(moduleDropout), $"module_dropout must be in [0, 1), got {moduleDropout}");
    }

    /// <summary>A new untracked tensor: zeros, or Kaiming-uniform with a = √5 (nn.Linear's init) over its second dimension.</summary>
    protected static Tensor NewFactor(int rows, int cols, bool zero, Generator generator)
    {
        using (TensorScope.Untracked())
        {
            return zero ? Tensor.Zeros(rows, cols) : Tensor.Empty(rows, cols).KaimingUniform_(generator);
        }
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var result = Base.Forward(input);
        if (!AdaptersEnabled) return result;
        foreach (var name in UnmergedActiveAdapters())
        {
            var s = settings[name];
            // PEFT keeps the adapter when torch.rand(1) > module_dropout.
            if (IsTraining && s.ModuleDropout > 0 && !(s.Random.NextUniform() > s.ModuleDropout)) continue;
            var delta = DeltaActivations(name, input);
            if (IsTraining && s.RankDropout > 0) delta = delta.Mul(RankDropoutMask(s));
            result = result.Add(delta);
        }
        return result;
    }

    /// <summary>
    /// PEFT's rank-dropout mask over output features: 1 where a uniform draw exceeds rank_dropout, optionally divided
    /// by the mask's mean. An all-zero mask stays zero (PEFT would divide 0 by 0).
    /// </summary>
    private Tensor RankDropoutMask(LycorisAdapterSettings s)
    {
        var mask = new float[OutFeatures];
        int kept = 0;
        for (int i = 0; i < mask.Length; i++)
        {
            if (s.Random.NextUniform() > s.RankDropout)
            {
                mask[i] = 1f;
                kept++;
            }
        }
        if (s.RescaleRankDropout && kept > 0)
        {
            float scale = (float)mask.Length / kept;
            for (int i = 0; i < mask.Length; i++) mask[i] *= scale;
        }
        return Tensor.From(mask, mask.Length);
    }

    /// <inheritdoc/>
    public override void SetAdapterTrainable(string adapterName, bool trainable)
    {
        foreach (var (_, dict) in parameterDicts)
        {
            if (dict.ContainsKey(adapterName)) dict[adapterName].RequiresGrad = trainable;
        }
    }

    /// <inheritdoc/>
    public override IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName)
    {
        _ = CheckedAdapter(adapterName);
        foreach (var (name, dict) in parameterDicts)
        {
            if (dict.ContainsKey(adapterName)) yield return (name, dict[adapterName]);
        }
    }

    /// <inheritdoc/>
    protected override void MergeAdapter(string adapterName, bool safeMerge) =>
        AddToBaseWeight(adapterName, ToStoredLayout(DeltaWeight(adapterName)), 1f, safeMerge);

    /// <inheritdoc/>
    protected override void UnmergeAdapter(string adapterName) =>
        AddToBaseWeight(adapterName, ToStoredLayout(DeltaWeight(adapterName)), -1f, safeMerge: false);

    private LycorisAdapterSettings Settings(string adapterName) =>
        settings.TryGetValue(adapterName, out var s) ? s : throw UnknownAdapter(adapterName);

    private sealed record LycorisAdapterSettings(int Rank, double Alpha, float Scaling, double RankDropout, double ModuleDropout, bool RescaleRankDropout, Generator Random);
}
