using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Vera;

/// <summary>
/// VeRA settings (PEFT's <c>VeraConfig</c>, peft_type "VERA"): one pair of frozen random matrices shared by all
/// targeted layers and two trained vectors per layer (see <see cref="VeraLinear"/>).
/// </summary>
/// <remarks>
/// <para>Keys (default): r (256), target_modules, exclude_modules, projection_prng_key (0), save_projection (true),
/// vera_dropout (0.0), d_initial (0.1), fan_in_fan_out (set by injection), bias ("none" only), init_weights (true),
/// layers_to_transform, layers_pattern, modules_to_save.</para>
/// <para>The shared A [r, in_max] and B [out_max, r] (in_max/out_max: the largest dimensions over the targeted layers,
/// as PEFT's _find_dim) are drawn as PEFT's _kaiming_init, U(±√(6/fan_in)), A first then B, from this library's
/// <see cref="Generator"/> seeded with projection_prng_key. The draws therefore differ from torch's generator, which is
/// why save_projection (PEFT's default) writes them as PEFT does — "base_model.vera_A" [r, in_max] and
/// "base_model.vera_B" [out_max, r] in adapter_model.safetensors — and loading takes them from the file when present
/// (adapters trained by PEFT load exactly), else regenerates them from the key (files without them: save_projection
/// false, or this library's first VeRA layout).</para>
/// </remarks>
public sealed class VeraConfig : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "VERA";

    /// <summary>r: rank of the shared projections (default 256; VeRA affords a high rank because they are frozen).</summary>
    public int Rank { get; set; } = 256;

    /// <summary>target_modules (names, regex or "all-linear"). Must be set before injection.</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>projection_prng_key: seed of the shared projections (default 0).</summary>
    public int ProjectionPrngKey { get; set; }

    /// <summary>save_projection (default true); see the remarks.</summary>
    public bool SaveProjection { get; set; } = true;

    /// <summary>vera_dropout (default 0).</summary>
    public double Dropout { get; set; }

    /// <summary>d_initial: the starting value of every λ_d entry (default 0.1).</summary>
    public double DInitial { get; set; } = 0.1;

    /// <summary>fan_in_fan_out: set by injection (true when it wraps a GPT-2 Conv1D).</summary>
    public bool FanInFanOut { get; set; }

    /// <summary>init_weights: λ_d = d_initial and λ_b = 0 when true (default).</summary>
    public bool InitWeights { get; set; } = true;

    /// <summary>layers_to_transform (null: all).</summary>
    public IList<int>? LayersToTransform { get; set; }

    /// <summary>layers_pattern.</summary>
    public IList<string>? LayersPattern { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Rank <= 0) throw new PeftConfigException($"r must be a positive integer, got {Rank}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new PeftConfigException($"vera_dropout must be in [0, 1), got {Dropout}");
        if (!double.IsFinite(DInitial)) throw new PeftConfigException($"d_initial must be finite, got {DInitial}");
        if (LayersPattern is { Count: > 0 } && LayersToTransform is not { Count: > 0 })
            throw new PeftConfigException("layers_pattern is set but layers_to_transform is not; set both (as PEFT requires)");
    }

    /// <summary>
    /// The shared projections for dimensions (<paramref name="outMax"/>, <paramref name="inMax"/>): A [r, in_max] then
    /// B [out_max, r], each U(±√(6/fan_in)) (fan_in = in_max for A, r for B), from a generator seeded with
    /// projection_prng_key. Frozen, owned by no scope.
    /// </summary>
    public (Tensor A, Tensor B) CreateProjections(int outMax, int inMax)
    {
        var generator = new Generator(unchecked((ulong)ProjectionPrngKey));
        Tensor a, b;
        using (TensorScope.Untracked())
        {
            a = Tensor.Empty(Rank, inMax);
            a.Uniform_(generator, -KaimingBound(inMax), KaimingBound(inMax));
            b = Tensor.Empty(outMax, Rank);
            b.Uniform_(generator, -KaimingBound(Rank), KaimingBound(Rank));
        }
        a.MakePersistent();
        b.MakePersistent();
        return (a, b);
    }

    private static float KaimingBound(int fanIn) => MathF.Sqrt(6f / fanIn);

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["r"] = Rank;
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["projection_prng_key"] = ProjectionPrngKey;
        fields["save_projection"] = SaveProjection;
        fields["vera_dropout"] = Dropout;
        fields["d_initial"] = DInitial;
        fields["fan_in_fan_out"] = FanInFanOut;
        fields["bias"] = "none";
        fields["init_weights"] = InitWeights;
        fields["layers_to_transform"] = LayersToTransform?.Cast<object?>().ToList();
        fields["layers_pattern"] = LayersPattern?.Cast<object?>().ToList();
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        fields.RequireDefault("bias", "none", "training biases with VeRA");
        Rank = fields.Int("r", 256);
        TargetModules = ReadSelector(fields, "target_modules");
        ExcludeModules = ReadSelector(fields, "exclude_modules");
        ProjectionPrngKey = fields.Int("projection_prng_key", 0);
        SaveProjection = fields.Bool("save_projection", true);
        Dropout = fields.Double("vera_dropout", 0);
        DInitial = fields.Double("d_initial", 0.1);
        FanInFanOut = fields.Bool("fan_in_fan_out", false);
        InitWeights = fields.Bool("init_weights", true);
        LayersToTransform = fields.IntOrList("layers_to_transform");
        LayersPattern = fields.StringOrList("layers_pattern") switch
        {
            (null, null) => null,
            (string single, _) => [single],
            (_, var list) => list,
        };
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator)
    {
        Validate();
        var targeted = LoraInjector.FindTargets(model, new TargetSpec("VeRA", TargetModules, ExcludeModules, ModulesToSave, LayersToTransform, LayersPattern, TaskType));
        var (a, b) = CreateProjections(targeted.Max(t => t.Layer.OutFeatures), targeted.Max(t => t.Layer.InFeatures));
        foreach (var (name, linear) in targeted)
        {
            if (linear is not VeraLinear layer)
            {
                if (linear is ITunerLayer) throw new PeftConfigException($"'{name}' already carries {linear.GetType().Name} adapters; VeRA cannot be added to it");
                FanInFanOut = linear is Models.Common.Conv1D;
                layer = new VeraLinear(linear);
                LoraInjector.Replace(model, name, layer, "VeRA");
            }
            layer.UpdateLayer(adapterName, a, b, Dropout, InitWeights, DInitial, generator);
        }
        return targeted.Select(t => t.Name).ToList();
    }

    /// <summary>PEFT's key of the shared A projection (adapter name removed, as PEFT saves every key).</summary>
    public const string ProjectionAKey = "base_model.vera_A";

    /// <summary>PEFT's key of the shared B projection.</summary>
    public const string ProjectionBKey = "base_model.vera_B";

    /// <summary>
    /// With save_projection, PEFT's "base_model.vera_A" [r, in_max] and "base_model.vera_B" [out_max, r]: the full shared
    /// tensors (each layer slices them), saved once per adapter. Loading writes a file's projections into them, so
    /// adapters trained by PEFT (torch's generator) load exactly.
    /// </summary>
    internal override IEnumerable<(string Key, Tensor Tensor)> SharedAdapterTensors(PeftModel model, string adapterName)
    {
        if (!SaveProjection) yield break;
        var layer = model.TunerLayers().Select(t => t.Layer).OfType<VeraLinear>().FirstOrDefault(l => l.AdapterNames.Contains(adapterName));
        if (layer is null) yield break;
        var (a, b) = layer.SharedProjections(adapterName);
        yield return (ProjectionAKey, a);
        yield return (ProjectionBKey, b);
    }

    /// <summary>Files written before the projections were saved (this library's first VeRA layout) lack them: regenerated from the key.</summary>
    internal override bool MayBeMissingOnLoad(string key) => key is ProjectionAKey or ProjectionBKey;

    private static ModuleSelector? ReadSelector(ConfigFields fields, string key) => fields.StringOrList(key) switch
    {
        (null, null) => null,
        (string pattern, _) => ModuleSelector.FromPattern(pattern),
        (_, var list) => ModuleSelector.FromNames(list!),
    };
}
