using Microsoft.ML.Peft.LinearAlgebra;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdapterArithmetic;

/// <summary>
/// Adapter arithmetic on a <see cref="PeftModel"/> (PEFT's <c>add_weighted_adapter</c>): a new LoRA adapter made
/// from weighted combinations of existing ones, for task arithmetic, negation (a negative weight), TIES and DARE merges.
/// </summary>
public static class WeightedAdapters
{
    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> combining <paramref name="adapters"/> with <paramref name="weights"/>
    /// (see <see cref="CombinationType"/> for the maths of each type). The new adapter targets the union of the
    /// sources' modules, has lora_alpha = r (scaling 1, no rsLoRA), is frozen and not active — call
    /// <see cref="PeftModel.SetAdapter(string)"/>. It carries LoRA matrices only: modules_to_save of the sources are not
    /// combined.
    /// </summary>
    /// <exception cref="ArgumentException">Unknown or non-LoRA adapters, mismatched counts, unequal ranks for the matrix
    /// types, negative weights where a square root is taken, a missing density, mixed target-module kinds.</exception>
    public static void AddWeightedAdapter(this PeftModel peft, IReadOnlyList<string> adapters, IReadOnlyList<double> weights,
        string adapterName, WeightedAdapterOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(peft);
        ArgumentNullException.ThrowIfNull(adapters);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentException.ThrowIfNullOrEmpty(adapterName);
        options ??= new WeightedAdapterOptions();
        var configs = CheckSources(peft, adapters, weights, adapterName, options);
        // PEFT: a single source is always combined linearly.
        var type = adapters.Count == 1 ? CombinationType.Linear : options.CombinationType;
        int newRank = type switch
        {
            CombinationType.Cat => configs.Sum(c => c.Rank),
            _ when options.IsSvd && adapters.Count > 1 => options.SvdRank ?? configs.Max(c => c.Rank),
            _ => configs[0].Rank,
        };
        if (newRank < 1) throw new ArgumentOutOfRangeException(nameof(options), options.SvdRank, "svd_rank must be at least 1");

        var first = configs[0];
        peft.AddAdapter(adapterName, new LoraConfig
        {
            Rank = newRank,
            Alpha = newRank,
            Dropout = first.Dropout,
            TargetModules = UnionOfTargets(configs, adapters),
            FanInFanOut = first.FanInFanOut,
            TaskType = first.TaskType,
            BaseModelNameOrPath = first.BaseModelNameOrPath,
            Revision = first.Revision,
        });

        var generator = new Generator(options.Seed);
        foreach (var (path, layer) in peft.TunerLayers())
        {
            if (layer is not LoraLinear lora || !lora.AdapterNames.Contains(adapterName)) continue;
            var present = Enumerable.Range(0, adapters.Count).Where(i => lora.AdapterNames.Contains(adapters[i])).ToList();
            if (present.Count == 0) continue;
            using (Autograd.NoGrad())
            {
                if (type == CombinationType.Cat) FillConcatenated(lora, adapters, weights, adapterName);
                else if (options.IsSvd && adapters.Count > 1) FillFromSvd(lora, path, present, adapters, weights, adapterName, newRank, options, generator);
                else FillMatrices(lora, path, present, adapters, weights, adapterName, type, options, generator);
            }
        }
    }

    private static List<LoraConfig> CheckSources(PeftModel peft, IReadOnlyList<string> adapters, IReadOnlyList<double> weights,
        string adapterName, WeightedAdapterOptions options)
    {
        if (adapters.Count == 0) throw new ArgumentException("at least one source adapter is needed", nameof(adapters));
        if (weights.Count != adapters.Count) throw new ArgumentException($"{adapters.Count} adapters but {weights.Count} weights", nameof(weights));
        if (peft.PeftConfigs.ContainsKey(adapterName)) throw new ArgumentException($"adapter '{adapterName}' already exists", nameof(adapterName));
        var configs = new List<LoraConfig>();
        foreach (var name in adapters)
        {
            if (!peft.PeftConfigs.TryGetValue(name, out var config))
                throw new ArgumentException($"adapter '{name}' does not exist (adapters: {string.Join(", ", peft.AdapterNames)})", nameof(adapters));
            configs.Add(config as LoraConfig ?? throw new ArgumentException($"adapter '{name}' is {config.PeftType}; only LoRA adapters can be combined", nameof(adapters)));
        }
        bool matrixType = adapters.Count == 1 || !options.IsSvd && options.CombinationType != CombinationType.Cat;
        if (matrixType)
        {
            if (configs.Select(c => c.Rank).Distinct().Count() > 1)
                throw new ArgumentException($"combination type {options.CombinationType} needs adapters of equal rank; ranks are [{string.Join(", ", configs.Select(c => c.Rank))}] (use Cat or an SVD type)", nameof(adapters));
            int negative = weights.ToList().FindIndex(w => w < 0);
            if (negative >= 0)
                throw new ArgumentException($"weight {weights[negative]} of adapter '{adapters[negative]}' is negative, but {options.CombinationType} scales A and B by √(weight·scaling); use Cat or an SVD type for negative weights", nameof(weights));
        }
        if (!options.IsSvd && configs.Any(c => c.RankPattern.Count > 0))
            throw new ArgumentException("adapters with rank_pattern can only be combined by an SVD type (their per-layer ranks differ)", nameof(adapters));
        if (options.NeedsDensity && adapters.Count > 1 && options.Density is null)
            throw new ArgumentException($"combination type {options.CombinationType} needs WeightedAdapterOptions.Density", nameof(options));
        if (options.SvdClamp is { } clamp && !(clamp > 0 && clamp <= 1))
            throw new ArgumentOutOfRangeException(nameof(options), clamp, "svd_clamp must be a quantile in (0, 1]");
        return configs;
    }

    /// <summary>Names are united; patterns are joined into one alternation, as PEFT; mixing the two kinds is refused.</summary>
    private static ModuleSelector UnionOfTargets(List<LoraConfig> configs, IReadOnlyList<string> adapters)
    {
        var targets = configs.Select((c, i) => c.TargetModules ?? throw new ArgumentException($"adapter '{adapters[i]}' has no target_modules", nameof(adapters))).ToList();
        if (targets.All(t => t.Names is not null))
            return ModuleSelector.FromNames(targets.SelectMany(t => t.Names!).Distinct(StringComparer.Ordinal));
        if (targets.All(t => t.Pattern is not null && !t.IsAllLinear))
            return ModuleSelector.FromPattern(string.Join("|", targets.Select(t => $"({t.Pattern})")));
        if (targets.All(t => t.IsAllLinear)) return ModuleSelector.AllLinear;
        throw new ArgumentException($"the adapters' target_modules mix names and patterns ({string.Join(", ", targets)}); PEFT cannot combine those", nameof(adapters));
    }

    private static void FillConcatenated(LoraLinear lora, IReadOnlyList<string> adapters, IReadOnlyList<double> weights, string adapterName)
    {
        var a = lora.LoraA(adapterName).AsSpan<float>();
        var b = lora.LoraB(adapterName).AsSpan<float>();
        a.Clear();
        b.Clear();
        int newRank = lora.Rank(adapterName), inFeatures = lora.InFeatures, outFeatures = lora.OutFeatures, offset = 0;
        for (int i = 0; i < adapters.Count; i++)
        {
            if (!lora.AdapterNames.Contains(adapters[i])) continue;
            int r = lora.Rank(adapters[i]);
            float factor = (float)(weights[i] * lora.Scaling(adapters[i]));
            var sourceA = lora.LoraA(adapters[i]).ToArray();
            var sourceB = lora.LoraB(adapters[i]).ToArray();
            for (int j = 0; j < r * inFeatures; j++) a[offset * inFeatures + j] = sourceA[j] * factor;
            for (int row = 0; row < outFeatures; row++)
            {
                for (int j = 0; j < r; j++) b[row * newRank + offset + j] = sourceB[row * r + j];
            }
            offset += r;
        }
    }

    private static void FillMatrices(LoraLinear lora, string path, List<int> present, IReadOnlyList<string> adapters, IReadOnlyList<double> weights,
        string adapterName, CombinationType type, WeightedAdapterOptions options, Generator generator)
    {
        var rootWeights = present.Select(i => Math.Sqrt(weights[i] * lora.Scaling(adapters[i]))).ToList();
        foreach (bool isA in new[] { true, false })
        {
            var tensors = present.Select(i => (isA ? lora.LoraA(adapters[i]) : lora.LoraB(adapters[i])).ToArray()).ToList();
            var merged = Combine(type, tensors, rootWeights, options, generator, $"{path} lora_{(isA ? "A" : "B")}");
            merged.CopyTo((isA ? lora.LoraA(adapterName) : lora.LoraB(adapterName)).AsSpan<float>());
        }
    }

    private static void FillFromSvd(LoraLinear lora, string path, List<int> present, IReadOnlyList<string> adapters, IReadOnlyList<double> weights,
        string adapterName, int newRank, WeightedAdapterOptions options, Generator generator)
    {
        int rows = lora.OutFeatures, columns = lora.InFeatures;
        var deltas = present.Select(i => lora.DeltaWeight(adapters[i]).ToArray()).ToList();
        var delta = Combine(options.CombinationType, deltas, [.. present.Select(i => weights[i])], options, generator, path);
        var svd = SingularValueDecomposition.ComputeThin(delta, rows, columns, $"combined delta of {path}");
        int k = Math.Min(newRank, svd.Rank);
        // B = U·diag(σ) [out, r], A = Vᵀ [r, in]; ranks beyond min(out, in) stay zero.
        var b = new float[rows * newRank];
        var a = new float[newRank * columns];
        ReadOnlySpan<double> u = svd.U, s = svd.SingularValues, vt = svd.Vt;
        for (int row = 0; row < rows; row++)
        {
            for (int j = 0; j < k; j++) b[row * newRank + j] = (float)(u[row * svd.Rank + j] * s[j]);
        }
        for (int j = 0; j < k * columns; j++) a[j] = (float)vt[j];
        if (options.SvdClamp is { } q) Clamp(a, b, q);
        a.CopyTo(lora.LoraA(adapterName).AsSpan<float>());
        b.CopyTo(lora.LoraB(adapterName).AsSpan<float>());
    }

    private static float[] Combine(CombinationType type, List<float[]> tensors, IReadOnlyList<double> weights, WeightedAdapterOptions options,
        Generator generator, string what)
    {
        double density = options.Density ?? 1;
        var merged = type switch
        {
            CombinationType.Linear or CombinationType.Svd => TaskArithmetic.WeightedSum(tensors, weights),
            CombinationType.Ties or CombinationType.TiesSvd => TaskArithmetic.Ties(tensors, weights, density, options.MajoritySignMethod),
            CombinationType.DareLinear or CombinationType.DareLinearSvd => TaskArithmetic.DareLinear(tensors, weights, density, generator),
            CombinationType.DareTies or CombinationType.DareTiesSvd => TaskArithmetic.DareTies(tensors, weights, density, options.MajoritySignMethod, generator),
            CombinationType.MagnitudePrune or CombinationType.MagnitudePruneSvd => TaskArithmetic.MagnitudePruneSum(tensors, weights, density),
            _ => throw new ArgumentOutOfRangeException(nameof(type), type, "not a merge of matrices"),
        };
        foreach (float x in merged)
        {
            if (!float.IsFinite(x)) throw new InvalidOperationException($"combining the adapters gave a non-finite value in {what}");
        }
        return merged;
    }

    /// <summary>Clamps A's and B's entries to [−x, x], x the q-quantile (linear interpolation, as torch.quantile) of all of them.</summary>
    private static void Clamp(float[] a, float[] b, double q)
    {
        var all = a.Concat(b).ToArray();
        Array.Sort(all);
        double position = q * (all.Length - 1);
        int low = (int)Math.Floor(position);
        int high = Math.Min(low + 1, all.Length - 1);
        float hi = (float)(all[low] + (position - low) * (all[high] - all[low]));
        for (int i = 0; i < a.Length; i++) a[i] = Math.Min(Math.Max(a[i], -hi), hi);   // torch.clamp order (also defined when hi < 0)
        for (int i = 0; i < b.Length; i++) b[i] = Math.Min(Math.Max(b[i], -hi), hi);
    }
}
