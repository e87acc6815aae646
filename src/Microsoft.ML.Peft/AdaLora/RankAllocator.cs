using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.AdaLora;

/// <summary>
/// AdaLoRA's budget allocator (PEFT's <c>adalora.RankAllocator</c>; Zhang et al. 2023, Eq. 7–11): keeps an EMA of
/// each adapter entry's sensitivity I = |p·∂L/∂p| (β₁) and of its uncertainty |I − Ī| (β₂), scores every singular
/// triplet i of every layer as s(E_i) + mean_j s(A_ij) + mean_k s(B_ki) with s = Ī·Ū, and zeroes the E entries of
/// the lowest-scoring triplets so that the model-wide number of kept triplets follows a cubic schedule from
/// init_r·layers down to target_r·layers.
/// </summary>
/// <remarks>
/// Schedule (PEFT's <c>budget_schedule</c>, step = 0-based optimizer step): step ≤ tinit → the full budget, no
/// masking; step &gt; total_step − tfinal → the target budget; in between
/// budget = ⌊(init − target)·(1 − (step − tinit)/(total_step − tfinal − tinit))³ + target⌋, masking when
/// step % deltaT == 0. The threshold is the k-th smallest score with k = init budget − budget; every triplet scoring
/// at or below it is masked (ties may mask more, as in PEFT). Where PEFT's torch.kthvalue would fail on k = 0 (the
/// budget still equals the initial one), nothing is masked. State is kept in float32 arrays, outside autograd.
/// </remarks>
public sealed class RankAllocator
{
    private readonly AdaLoraConfig config;
    private readonly string adapterName;
    private readonly List<(string Path, AdaLoraLinear Layer)> layers;
    private readonly Dictionary<Tensor, Moments> moments = new(ReferenceEqualityComparer.Instance);

    /// <summary>An allocator over the given AdaLoRA layers (dotted paths) for adapter <paramref name="adapterName"/>.</summary>
    public RankAllocator(AdaLoraConfig config, string adapterName, IEnumerable<(string Path, AdaLoraLinear Layer)> layers)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(layers);
        if (config.TotalStep is not { } total) throw new ArgumentException("AdaLoRA's rank allocator needs total_step", nameof(config));
        if (!(config.Beta1 > 0 && config.Beta1 < 1) || !(config.Beta2 > 0 && config.Beta2 < 1))
            throw new ArgumentException($"AdaLoRA beta1 and beta2 must be in (0, 1), got {config.Beta1} and {config.Beta2}", nameof(config));
        _ = total;
        this.config = config;
        this.adapterName = adapterName;
        this.layers = layers.Where(l => l.Layer.AdapterNames.Contains(adapterName)).OrderBy(l => l.Path, StringComparer.Ordinal).ToList();
        if (this.layers.Count == 0) throw new ArgumentException($"no AdaLoRA layer carries adapter '{adapterName}'", nameof(layers));
        InitialBudget = this.layers.Sum(l => l.Layer.Rank(adapterName));
        TargetBudget = config.TargetR * this.layers.Count;
    }

    /// <summary>Σ init_r over the layers (PEFT's init_bgt).</summary>
    public int InitialBudget { get; }

    /// <summary>target_r × number of layers (PEFT's target_bgt).</summary>
    public int TargetBudget { get; }

    /// <summary>The budget at <paramref name="step"/> and whether the schedule masks at that step.</summary>
    public (int Budget, bool Mask) BudgetSchedule(int step)
    {
        int tinit = config.TInit, tfinal = config.TFinal, total = config.TotalStep!.Value;
        if (step <= tinit) return (InitialBudget, false);
        if (step > total - tfinal) return (TargetBudget, true);
        double mulCoeff = 1 - (step - tinit) / (double)(total - tfinal - tinit);
        int budget = (int)((InitialBudget - TargetBudget) * (mulCoeff * mulCoeff * mulCoeff) + TargetBudget);
        return (budget, step % config.DeltaT == 0);
    }

    /// <summary>
    /// PEFT's <c>update_and_allocate</c> of the allocator: updates the importance EMAs before the final phase, then
    /// masks to the scheduled budget when the schedule (or <paramref name="forceMask"/>) says so. Returns the budget
    /// and, when it masked, the rank pattern (per layer path, which triplets are kept).
    /// </summary>
    public (int Budget, IReadOnlyDictionary<string, bool[]>? RankPattern) UpdateAndAllocate(int step, bool forceMask = false)
    {
        if (step < config.TotalStep!.Value - config.TFinal) UpdateImportance();
        var (budget, mask) = BudgetSchedule(step);
        return (budget, mask || forceMask ? MaskToBudget(budget) : null);
    }

    /// <summary>Forgets the importance EMAs (PEFT's reset_ipt, done once the final budget is fixed).</summary>
    public void ResetImportance() => moments.Clear();

    /// <summary>Updates sensitivity and uncertainty EMAs from the current values and gradients of A, E and B.</summary>
    public void UpdateImportance()
    {
        foreach (var (path, layer) in layers)
        {
            foreach (var p in new[] { layer.LoraA(adapterName), layer.LoraE(adapterName), layer.LoraB(adapterName) })
            {
                var grad = p.Grad ?? throw new InvalidOperationException($"AdaLoRA: '{path}' has no gradient for adapter '{adapterName}'; call the allocator after backward and before ZeroGrad");
                if (!moments.TryGetValue(p, out var m)) moments[p] = m = new Moments(p.Count);
                m.Update(p.ToArray(), grad.ToArray(), (float)config.Beta1, (float)config.Beta2);
            }
        }
    }

    /// <summary>
    /// Zeroes E for the lowest-scoring triplets so that (without ties) <paramref name="budget"/> stay, and returns the
    /// kept-triplet pattern per layer path.
    /// </summary>
    public IReadOnlyDictionary<string, bool[]> MaskToBudget(int budget)
    {
        var scores = new List<(string Path, AdaLoraLinear Layer, float[] Score)>();
        foreach (var (path, layer) in layers)
        {
            var a = layer.LoraA(adapterName);
            var b = layer.LoraB(adapterName);
            int r = a.Size(0), inF = a.Size(1), outF = b.Size(0);
            var sa = ElementScore(a);
            var se = ElementScore(layer.LoraE(adapterName));
            var sb = ElementScore(b);
            var triplet = new float[r];
            for (int i = 0; i < r; i++)
            {
                float meanA = 0, meanB = 0;
                for (int j = 0; j < inF; j++) meanA += sa[i * inF + j];
                for (int o = 0; o < outF; o++) meanB += sb[o * r + i];
                triplet[i] = se[i] + ((meanA / inF) + (meanB / outF));
            }
            scores.Add((path, layer, triplet));
        }
        int k = InitialBudget - budget;
        float threshold = float.NegativeInfinity;
        if (k > 0)
        {
            var all = scores.SelectMany(s => s.Score).ToArray();
            Array.Sort(all);
            threshold = all[Math.Min(k, all.Length) - 1];
        }
        var pattern = new Dictionary<string, bool[]>(StringComparer.Ordinal);
        foreach (var (path, layer, score) in scores)
        {
            var keep = score.Select(s => !(s <= threshold)).ToArray();
            Apply(layer.LoraE(adapterName), keep);
            pattern[path] = keep;
        }
        return pattern;
    }

    /// <summary>Zeroes E wherever <paramref name="pattern"/> says a triplet is pruned (PEFT's mask_using_rank_pattern).</summary>
    public void MaskUsingRankPattern(IReadOnlyDictionary<string, bool[]> pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        foreach (var (path, layer) in layers)
        {
            if (!pattern.TryGetValue(path, out var keep)) throw new KeyNotFoundException($"the rank pattern has no entry for '{path}'");
            Apply(layer.LoraE(adapterName), keep);
        }
    }

    private static void Apply(Tensor e, bool[] keep)
    {
        if (keep.Length != e.Count) throw new ArgumentException($"rank pattern of length {keep.Length} does not fit E {e}");
        using (Autograd.NoGrad())
        {
            var values = e.AsSpan<float>();
            for (int i = 0; i < keep.Length; i++)
            {
                if (!keep[i]) values[i] = 0f;
            }
        }
    }

    private float[] ElementScore(Tensor p) =>
        moments.TryGetValue(p, out var m) ? m.Score() : new float[p.Count];

    /// <summary>EMA of the sensitivity (Ī) and of the uncertainty (Ū) of one parameter, element-wise.</summary>
    private sealed class Moments(int count)
    {
        private readonly float[] expAvgIpt = new float[count];
        private readonly float[] expAvgUnc = new float[count];

        public void Update(float[] value, float[] grad, float beta1, float beta2)
        {
            for (int i = 0; i < value.Length; i++)
            {
                float ipt = MathF.Abs(value[i] * grad[i]);
                expAvgIpt[i] = beta1 * expAvgIpt[i] + (1 - beta1) * ipt;
                expAvgUnc[i] = beta2 * expAvgUnc[i] + (1 - beta2) * MathF.Abs(ipt - expAvgIpt[i]);
            }
        }

        public float[] Score()
        {
            var s = new float[expAvgIpt.Length];
            for (int i = 0; i < s.Length; i++) s[i] = expAvgIpt[i] * expAvgUnc[i];
            return s;
        }
    }
}
