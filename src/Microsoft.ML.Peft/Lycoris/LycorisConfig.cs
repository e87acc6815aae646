using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lycoris;

/// <summary>
/// The settings LoHa and LoKr share (PEFT's <c>LycorisConfig</c>): r (8), alpha (8), rank_dropout (0), module_dropout (0),
/// use_effective_conv2d (false; convolution-only, kept for the file), target_modules, exclude_modules, init_weights
/// (true), layers_to_transform, layers_pattern, rank_pattern ({}), alpha_pattern ({}), modules_to_save.
/// </summary>
public abstract class LycorisConfig : PeftConfig
{
    /// <summary>r (default 8).</summary>
    public int Rank { get; set; } = 8;

    /// <summary>alpha (default 8); the update is scaled by alpha / r.</summary>
    public double Alpha { get; set; } = 8;

    /// <summary>rank_dropout: probability of dropping each output row of ΔW while training (default 0).</summary>
    public double RankDropout { get; set; }

    /// <summary>module_dropout: probability of skipping the whole adapter for one training forward (default 0).</summary>
    public double ModuleDropout { get; set; }

    /// <summary>use_effective_conv2d: only meaningful for convolutions, which this library does not adapt; kept for the file.</summary>
    public bool UseEffectiveConv2d { get; set; }

    /// <summary>target_modules (names or regex). Must be set before injection.</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>init_weights: true (default) starts with ΔW = 0; false draws every factor at random.</summary>
    public bool InitWeights { get; set; } = true;

    /// <summary>layers_to_transform (null: all).</summary>
    public IList<int>? LayersToTransform { get; set; }

    /// <summary>layers_pattern.</summary>
    public IList<string>? LayersPattern { get; set; }

    /// <summary>rank_pattern: regex → r for the modules it matches (as LoRA's).</summary>
    public OrderedDictionary<string, int> RankPattern { get; init; } = [];

    /// <summary>alpha_pattern: regex → alpha.</summary>
    public OrderedDictionary<string, double> AlphaPattern { get; init; } = [];

    /// <summary>The method's name in messages ("LoHa", "LoKr").</summary>
    private protected abstract string MethodName { get; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Rank <= 0) throw new PeftConfigException($"r must be a positive integer, got {Rank}");
        if (!double.IsFinite(Alpha)) throw new PeftConfigException($"alpha must be finite, got {Alpha}");
        if (!(RankDropout >= 0 && RankDropout < 1)) throw new PeftConfigException($"rank_dropout must be in [0, 1), got {RankDropout}");
        if (!(ModuleDropout >= 0 && ModuleDropout < 1)) throw new PeftConfigException($"module_dropout must be in [0, 1), got {ModuleDropout}");
        foreach (var (key, r) in RankPattern)
        {
            if (r <= 0) throw new PeftConfigException($"rank_pattern['{key}'] must be a positive integer, got {r}");
        }
        foreach (var (key, a) in AlphaPattern)
        {
            if (!double.IsFinite(a)) throw new PeftConfigException($"alpha_pattern['{key}'] must be finite, got {a}");
        }
        if (LayersPattern is { Count: > 0 } && LayersToTransform is not { Count: > 0 })
            throw new PeftConfigException("layers_pattern is set but layers_to_transform is not; set both (as PEFT requires)");
    }

    /// <summary>Writes the shared keys; <paramref name="methodFields"/> adds the method's own after the dropouts (PEFT's order).</summary>
    private protected void WriteSharedFields(Dictionary<string, object?> fields, Action<Dictionary<string, object?>> methodFields)
    {
        fields["r"] = Rank;
        fields["alpha"] = PythonJson.Number(Alpha);
        fields["rank_dropout"] = RankDropout;
        fields["module_dropout"] = ModuleDropout;
        fields["use_effective_conv2d"] = UseEffectiveConv2d;
        methodFields(fields);
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["init_weights"] = InitWeights;
        fields["layers_to_transform"] = LayersToTransform?.Cast<object?>().ToList();
        fields["layers_pattern"] = LayersPattern?.Cast<object?>().ToList();
        fields["rank_pattern"] = RankPattern.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal);
        fields["alpha_pattern"] = AlphaPattern.ToDictionary(kv => kv.Key, kv => (object?)PythonJson.Number(kv.Value), StringComparer.Ordinal);
    }

    /// <summary>Reads the shared keys (the method reads its own first or after).</summary>
    private protected void ReadSharedFields(ConfigFields fields)
    {
        Rank = fields.Int("r", 8);
        Alpha = fields.Double("alpha", 8);
        RankDropout = fields.Double("rank_dropout", 0);
        ModuleDropout = fields.Double("module_dropout", 0);
        UseEffectiveConv2d = fields.Bool("use_effective_conv2d", false);
        TargetModules = fields.Selector("target_modules");
        ExcludeModules = fields.Selector("exclude_modules");
        InitWeights = fields.Bool("init_weights", true);
        LayersToTransform = fields.IntOrList("layers_to_transform");
        LayersPattern = fields.StringList("layers_pattern");
        foreach (var (key, value) in fields.NumberMap("rank_pattern"))
        {
            if (value != Math.Floor(value)) throw fields.Wrong("rank_pattern", "an object of integer ranks", value);
            RankPattern[key] = (int)value;
        }
        foreach (var (key, value) in fields.NumberMap("alpha_pattern")) AlphaPattern[key] = value;
    }

    /// <summary>Wraps a targeted base layer in the method's layer type.</summary>
    private protected abstract LycorisLinear CreateLayer(LinearLayer baseLayer);

    /// <summary>Adds the adapter to one layer with the (pattern-resolved) rank and alpha.</summary>
    private protected abstract void AddAdapter(LycorisLinear layer, string adapterName, int rank, double alpha, Generator generator);

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator)
    {
        Validate();
        var targeted = LoraInjector.FindTargets(model, new TargetSpec(MethodName, TargetModules, ExcludeModules, ModulesToSave, LayersToTransform, LayersPattern, TaskType));
        var layers = new List<LycorisLinear>();
        foreach (var (name, linear) in targeted)
        {
            var layer = linear as LycorisLinear;
            if (layer is null || layer.GetType() != CreateLayerType)
            {
                if (linear is ITunerLayer) throw new PeftConfigException($"'{name}' already carries {linear.GetType().Name} adapters; {MethodName} cannot be added to it");
                layer = CreateLayer(linear);
                LoraInjector.Replace(model, name, layer, MethodName);
            }
            string? rankKey = TargetMatching.PatternKey(RankPattern.Keys, name);
            string? alphaKey = TargetMatching.PatternKey(AlphaPattern.Keys, name);
            AddAdapter(layer, adapterName, rankKey is null ? Rank : RankPattern[rankKey], alphaKey is null ? Alpha : AlphaPattern[alphaKey], generator);
        }
        return targeted.Select(t => t.Name).ToList();
    }

    /// <summary>The layer type <see cref="CreateLayer"/> makes (an existing one of that type receives the new adapter).</summary>
    private protected abstract Type CreateLayerType { get; }
}
