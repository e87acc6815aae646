using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// LoRA settings, field for field PEFT's <c>LoraConfig</c> (defaults included), read from and written to
/// adapter_config.json with PEFT's snake_case keys.
/// </summary>
/// <remarks>
/// <para>Mapping (PEFT key → property, default):
/// r → <see cref="Rank"/> (8); lora_alpha → <see cref="Alpha"/> (8); lora_dropout → <see cref="Dropout"/> (0.0);
/// target_modules → <see cref="TargetModules"/> (null: must be set; see <see cref="DefaultTargetModules"/>);
/// exclude_modules → <see cref="ExcludeModules"/> (null); fan_in_fan_out → <see cref="FanInFanOut"/> (false);
/// bias → <see cref="Bias"/> ("none"); use_rslora → <see cref="UseRsLora"/> (false);
/// init_lora_weights → <see cref="InitLoraWeights"/> (true); layers_to_transform → <see cref="LayersToTransform"/>
/// (null; an int in JSON is read as a one-element list); layers_pattern → <see cref="LayersPattern"/> (null; a string
/// in JSON is read as a one-element list); rank_pattern → <see cref="RankPattern"/> ({}); alpha_pattern →
/// <see cref="AlphaPattern"/> ({}); modules_to_save, task_type, inference_mode, base_model_name_or_path, revision →
/// the <see cref="PeftConfig"/> properties.</para>
/// <para>Scaling of an adapter is alpha / r, or alpha / √r with rsLoRA. fan_in_fan_out never decides the layout: each
/// layer's own weight does (a <see cref="Models.Common.Conv1D"/> is [in, out], every other <see cref="LinearLayer"/>
/// [out, in]). Injection rewrites the property as PEFT does (which warns; this library has no log hook, so it is
/// silent): true when it wraps a Conv1D, false when it wraps any other linear layer, the last new wrap deciding, so
/// the saved adapter_config.json says what PEFT's would. use_dora → <see cref="UseDora"/> (false). MoSLoRA is not in
/// PEFT: its authors' fork adds lora_use_mixer → <see cref="UseMixer"/> (false), and this library adds
/// lora_mixer_init → <see cref="MixerInit"/> ("kaiming"; "orthogonal"); both are written only when the mixer is on, so
/// plain LoRA files stay PEFT's. PEFT features that are not implemented (lora_bias, layer_replication, loftq_config,
/// eva_config, corda_config, use_qalora, target_parameters, trainable_token_indices, ...) are accepted in a file only
/// at their defaults.</para>
/// </remarks>
public sealed class LoraConfig : PeftConfig
{
    /// <summary>Keys of PEFT LoRA features this library does not implement, with the only value accepted for each.</summary>
    private static readonly (string Key, object? Default, string Feature)[] UnsupportedFields =
    [
        ("lora_bias", false, "LoRA bias on B"),
        ("layer_replication", null, "layer replication"),
        ("loftq_config", new Dictionary<string, object?>(), "LoftQ"),
        ("megatron_config", null, "Megatron parallel layers"),
        ("eva_config", null, "EVA initialisation"),
        ("corda_config", null, "CorDA initialisation"),
        ("lora_ga_config", null, "LoRA-GA initialisation"),
        ("use_qalora", false, "QA-LoRA"),
        ("target_parameters", null, "targeting raw parameters"),
        ("trainable_token_indices", null, "trainable tokens"),
        ("alora_invocation_tokens", null, "activated LoRA"),
        ("arrow_config", null, "Arrow routing"),
        ("velora_config", null, "VeLoRA"),
        ("monteclora_config", null, "MonteCLoRA"),
        ("kasa_config", null, "KaSA"),
        ("use_bdlora", null, "BD-LoRA"),
    ];

    /// <inheritdoc/>
    public override string PeftType => "LORA";

    /// <summary>r: the adapter rank (default 8).</summary>
    public int Rank { get; set; } = 8;

    /// <summary>lora_alpha: the scaling numerator (default 8).</summary>
    public double Alpha { get; set; } = 8;

    /// <summary>lora_dropout: dropout probability on the adapter's input while training (default 0).</summary>
    public double Dropout { get; set; }

    /// <summary>target_modules: names / "." suffixes, a full-match regex, or "all-linear". Must be set before injection.</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules: modules never adapted (same syntax as <see cref="TargetModules"/>), or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>fan_in_fan_out: true for GPT-2 Conv1D weights stored [in, out]; set by injection from the targeted layers (see remarks).</summary>
    public bool FanInFanOut { get; set; }

    /// <summary>bias: which biases are trained and saved (default <see cref="LoraBias.None"/>).</summary>
    public LoraBias Bias { get; set; } = LoraBias.None;

    /// <summary>use_rslora: scaling alpha/√r instead of alpha/r (rank-stabilised LoRA).</summary>
    public bool UseRsLora { get; set; }

    /// <summary>
    /// use_dora: DoRA (weight-decomposed LoRA) — a trainable magnitude per output row times the normalised adapted
    /// weight; see <see cref="DoraMagnitude"/>.
    /// </summary>
    public bool UseDora { get; set; }

    /// <summary>lora_use_mixer: MoSLoRA's trainable r×r mixer between A and B (update scaling·B·M·A).</summary>
    public bool UseMixer { get; set; }

    /// <summary>lora_mixer_init: how the MoSLoRA mixer starts (default Kaiming-uniform, as the authors' code).</summary>
    public MoSLoraMixerInit MixerInit { get; set; } = MoSLoraMixerInit.KaimingUniform;

    /// <summary>init_lora_weights (default <see cref="LoraInit.Default"/>).</summary>
    public LoraInit InitLoraWeights { get; set; } = LoraInit.Default;

    /// <summary>layers_to_transform: only layers with these indices are adapted (null: all).</summary>
    public IList<int>? LayersToTransform { get; set; }

    /// <summary>layers_pattern: name(s) of the layer list whose index <see cref="LayersToTransform"/> refers to ("layers", "h").</summary>
    public IList<string>? LayersPattern { get; set; }

    /// <summary>rank_pattern: regex (matched on a "." boundary against the end of the module name) → rank; first match wins.</summary>
    public OrderedDictionary<string, int> RankPattern { get; init; } = [];

    /// <summary>alpha_pattern: regex → alpha, matched like <see cref="RankPattern"/>.</summary>
    public OrderedDictionary<string, double> AlphaPattern { get; init; } = [];

    /// <summary>
    /// PEFT's default target_modules for a Hugging Face model_type (the attention query/value projections), or null
    /// when PEFT has no default for it.
    /// </summary>
    public static IReadOnlyList<string>? DefaultTargetModules(string modelType) => modelType switch
    {
        "llama" or "mistral" or "qwen2" or "gemma" or "phi3" => ["q_proj", "v_proj"],
        "bert" or "roberta" or "xlm-roberta" => ["query", "value"],
        "distilbert" => ["q_lin", "v_lin"],
        "gpt2" => ["c_attn"],
        "gpt_neox" => ["query_key_value"],
        _ => null,
    };

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (Rank <= 0) throw new PeftConfigException($"r must be a positive integer, got {Rank}");
        if (!double.IsFinite(Alpha)) throw new PeftConfigException($"lora_alpha must be finite, got {Alpha}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new PeftConfigException($"lora_dropout must be in [0, 1), got {Dropout}");
        if (!Enum.IsDefined(Bias)) throw new PeftConfigException($"bias {Bias} is not none, all or lora_only");
        if (!Enum.IsDefined(MixerInit)) throw new PeftConfigException($"lora_mixer_init {MixerInit} is not kaiming or orthogonal");
        ArgumentNullException.ThrowIfNull(InitLoraWeights);
        foreach (var (key, r) in RankPattern)
        {
            if (r <= 0) throw new PeftConfigException($"rank_pattern['{key}'] must be a positive integer, got {r}");
        }
        foreach (var (key, a) in AlphaPattern)
        {
            if (!double.IsFinite(a)) throw new PeftConfigException($"alpha_pattern['{key}'] must be finite, got {a}");
        }
        bool usesLayers = LayersToTransform is { Count: > 0 };
        if (LayersPattern is { Count: > 0 } && !usesLayers)
            throw new PeftConfigException("layers_pattern is set but layers_to_transform is not; set both (as PEFT requires)");
        if (TargetModules?.Pattern is not null && !TargetModules.IsAllLinear && (usesLayers || LayersPattern is { Count: > 0 }))
            throw new PeftConfigException("layers_to_transform / layers_pattern cannot be used when target_modules is a regular expression string");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["r"] = Rank;
        fields["lora_alpha"] = PythonJson.Number(Alpha);
        fields["lora_dropout"] = Dropout;
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["fan_in_fan_out"] = FanInFanOut;
        fields["bias"] = LoraBiasNames.ToJson(Bias);
        fields["use_rslora"] = UseRsLora;
        fields["use_dora"] = UseDora;
        if (UseMixer)
        {
            fields["lora_use_mixer"] = true;
            fields["lora_mixer_init"] = MixerInit == MoSLoraMixerInit.Orthogonal ? "orthogonal" : "kaiming";
        }
        fields["init_lora_weights"] = InitLoraWeights.ToJsonValue();
        fields["layers_to_transform"] = LayersToTransform?.Cast<object?>().ToList();
        fields["layers_pattern"] = LayersPattern?.Cast<object?>().ToList();
        fields["rank_pattern"] = RankPattern.ToDictionary(kv => kv.Key, kv => (object?)kv.Value, StringComparer.Ordinal);
        fields["alpha_pattern"] = AlphaPattern.ToDictionary(kv => kv.Key, kv => PythonJson.Number(kv.Value), StringComparer.Ordinal);
        // Defaults of the fields every PEFT release writes, so files look like PEFT's (kept as read when present).
        fields.TryAdd("lora_bias", false);
        fields.TryAdd("layer_replication", null);
        fields.TryAdd("loftq_config", new Dictionary<string, object?>());
        fields.TryAdd("megatron_config", null);
        fields.TryAdd("megatron_core", "megatron.core");
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        foreach (var (key, value, feature) in UnsupportedFields) fields.RequireDefault(key, value, feature);
        Rank = fields.Int("r", 8);
        Alpha = fields.Double("lora_alpha", 8);
        Dropout = fields.Double("lora_dropout", 0);
        TargetModules = fields.Selector("target_modules");
        ExcludeModules = fields.Selector("exclude_modules");
        FanInFanOut = fields.Bool("fan_in_fan_out", false);
        string bias = fields.String("bias") ?? "none";
        Bias = LoraBiasNames.Parse(bias) ?? throw fields.Wrong("bias", "\"none\", \"all\" or \"lora_only\"", bias);
        UseRsLora = fields.Bool("use_rslora", false);
        UseDora = fields.Bool("use_dora", false);
        UseMixer = fields.Bool("lora_use_mixer", false);
        MixerInit = fields.String("lora_mixer_init") switch
        {
            null or "kaiming" => MoSLoraMixerInit.KaimingUniform,
            "orthogonal" => MoSLoraMixerInit.Orthogonal,
            var other => throw fields.Wrong("lora_mixer_init", "\"kaiming\" or \"orthogonal\"", other),
        };
        var init = fields.Take("init_lora_weights");
        InitLoraWeights = LoraInit.Parse(init)
            ?? throw new PeftConfigException($"{fields.Source}: init_lora_weights {PythonJson.Serialize(init)} is not supported (supported: true, false, \"gaussian\", \"pissa\", \"pissa_niter_<n>\", \"olora\")");
        LayersToTransform = fields.IntOrList("layers_to_transform");
        LayersPattern = fields.StringList("layers_pattern");
        foreach (var (key, value) in fields.NumberMap("rank_pattern"))
        {
            if (value != Math.Floor(value)) throw fields.Wrong("rank_pattern", "an object of integer ranks", value);
            RankPattern[key] = (int)value;
        }
        foreach (var (key, value) in fields.NumberMap("alpha_pattern")) AlphaPattern[key] = value;
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        LoraInjector.Inject(model, this, adapterName, generator);

    internal override IEnumerable<string> ExtraTrainableParameterNames(Module model) => LoraInjector.TrainedBiasNames(model, this);
}
