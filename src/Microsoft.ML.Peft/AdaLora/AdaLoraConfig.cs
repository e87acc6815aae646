using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.AdaLora;

/// <summary>
/// AdaLoRA settings (PEFT's <c>AdaLoraConfig</c>, peft_type "ADALORA", a LoraConfig subclass there): SVD-shaped
/// adapters whose singular values are pruned during training from init_r to target_r per layer on average.
/// </summary>
/// <remarks>
/// <para>AdaLoRA keys (default): target_r (8), init_r (12), tinit (0), tfinal (0), deltaT (1), beta1 (0.85), beta2
/// (0.85), orth_reg_weight (0.5), total_step (null; PEFT requires it, here it may instead come from the trainer through
/// <see cref="CreateTrainingHooks"/>), rank_pattern (null). Shared LoRA keys: r (8, unused by AdaLoRA as in PEFT),
/// lora_alpha (8), lora_dropout (0), target_modules, exclude_modules, fan_in_fan_out, init_lora_weights (true or
/// false), layers_to_transform, layers_pattern; bias must be "none", and use_dora, use_rslora, PiSSA and other LoRA
/// features are rejected (PEFT rejects DoRA for AdaLoRA too).</para>
/// <para>Training-time behaviour comes through <see cref="IProvidesTrainingHooks"/>: the orthogonality regulariser as
/// an extra loss and the rank allocator after each optimizer step. Adapters are saved at full size init_r with the
/// pruned singular values zero (PEFT files with a non-null rank_pattern, i.e. resized tensors, are refused on load);
/// PEFT reads such a file as is.</para>
/// </remarks>
public sealed class AdaLoraConfig : PeftConfig, IProvidesTrainingHooks
{
    /// <inheritdoc/>
    public override string PeftType => "ADALORA";

    /// <summary>target_r: the average rank per layer at the end of the schedule (default 8).</summary>
    public int TargetR { get; set; } = 8;

    /// <summary>init_r: every layer's starting rank (default 12).</summary>
    public int InitR { get; set; } = 12;

    /// <summary>tinit: steps of initial warm-up without pruning (default 0).</summary>
    public int TInit { get; set; }

    /// <summary>tfinal: final steps at the target budget with the pattern frozen (default 0).</summary>
    public int TFinal { get; set; }

    /// <summary>deltaT: steps between two budget allocations (default 1).</summary>
    public int DeltaT { get; set; } = 1;

    /// <summary>beta1: EMA factor of the sensitivity (default 0.85).</summary>
    public double Beta1 { get; set; } = 0.85;

    /// <summary>beta2: EMA factor of the uncertainty (default 0.85).</summary>
    public double Beta2 { get; set; } = 0.85;

    /// <summary>orth_reg_weight: weight of the orthogonality regulariser (default 0.5; must be &gt; 0 to train).</summary>
    public double OrthRegWeight { get; set; } = 0.5;

    /// <summary>total_step: the number of optimizer steps of the run (null until the trainer sets it).</summary>
    public int? TotalStep { get; set; }

    /// <summary>r: LoRA's rank field, kept for round trips; AdaLoRA uses <see cref="InitR"/>.</summary>
    public int Rank { get; set; } = 8;

    /// <summary>lora_alpha: the scaling numerator (alpha / ranknum; default 8).</summary>
    public double Alpha { get; set; } = 8;

    /// <summary>lora_dropout (default 0).</summary>
    public double Dropout { get; set; }

    /// <summary>target_modules (names, a regex, or "all-linear"). Must be set before injection.</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>fan_in_fan_out: set by injection (true when it wraps a GPT-2 Conv1D), as for LoRA.</summary>
    public bool FanInFanOut { get; set; }

    /// <summary>init_lora_weights: E = 0, A, B ~ N(0, 0.02²) when true (default); all standard normal when false.</summary>
    public bool InitLoraWeights { get; set; } = true;

    /// <summary>layers_to_transform (null: all).</summary>
    public IList<int>? LayersToTransform { get; set; }

    /// <summary>layers_pattern.</summary>
    public IList<string>? LayersPattern { get; set; }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (InitR <= 0) throw new PeftConfigException($"init_r must be a positive integer, got {InitR}");
        if (TargetR <= 0 || TargetR > InitR) throw new PeftConfigException($"target_r must be in [1, init_r = {InitR}], got {TargetR}");
        if (DeltaT <= 0) throw new PeftConfigException($"deltaT must be a positive integer, got {DeltaT}");
        if (TInit < 0 || TFinal < 0) throw new PeftConfigException($"tinit and tfinal must be non-negative, got {TInit} and {TFinal}");
        if (!(Beta1 > 0 && Beta1 < 1) || !(Beta2 > 0 && Beta2 < 1)) throw new PeftConfigException($"beta1 and beta2 must be in (0, 1), got {Beta1} and {Beta2}");
        if (!double.IsFinite(OrthRegWeight) || OrthRegWeight < 0) throw new PeftConfigException($"orth_reg_weight must be a non-negative number, got {OrthRegWeight}");
        if (!double.IsFinite(Alpha)) throw new PeftConfigException($"lora_alpha must be finite, got {Alpha}");
        if (!(Dropout >= 0 && Dropout < 1)) throw new PeftConfigException($"lora_dropout must be in [0, 1), got {Dropout}");
        if (TotalStep is { } total)
        {
            if (total <= 0) throw new PeftConfigException($"AdaLoRA does not work when total_step is not positive, got {total}");
            if (TInit >= total - TFinal)
                throw new PeftConfigException($"tinit ({TInit}) must be smaller than total_step - tfinal ({total} - {TFinal}): the schedule leaves no budgeting phase");
        }
    }

    /// <summary>
    /// The allocator and regulariser for training adapter <paramref name="adapterName"/>; sets <see cref="TotalStep"/>
    /// from <paramref name="totalSteps"/> when it is not set (so the saved config carries it, as PEFT requires).
    /// </summary>
    public IAdapterTrainingHooks CreateTrainingHooks(PeftModel model, string adapterName, int totalSteps)
    {
        ArgumentNullException.ThrowIfNull(model);
        if (!(OrthRegWeight > 0)) throw new PeftConfigException($"orth_reg_weight should be greater than 0 to train AdaLoRA, got {OrthRegWeight}");
        TotalStep ??= totalSteps;
        Validate();
        return new AdaLoraTrainingHooks(model, this, adapterName);
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["target_r"] = TargetR;
        fields["init_r"] = InitR;
        fields["tinit"] = TInit;
        fields["tfinal"] = TFinal;
        fields["deltaT"] = DeltaT;
        fields["beta1"] = Beta1;
        fields["beta2"] = Beta2;
        fields["orth_reg_weight"] = OrthRegWeight;
        fields["total_step"] = TotalStep;
        fields["rank_pattern"] = null;
        fields["r"] = Rank;
        fields["lora_alpha"] = Alpha == Math.Floor(Alpha) && Math.Abs(Alpha) < 1e15 ? (object)(long)Alpha : Alpha;
        fields["lora_dropout"] = Dropout;
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["fan_in_fan_out"] = FanInFanOut;
        fields["bias"] = "none";
        fields["init_lora_weights"] = InitLoraWeights;
        fields["layers_to_transform"] = LayersToTransform?.Cast<object?>().ToList();
        fields["layers_pattern"] = LayersPattern?.Cast<object?>().ToList();
        fields.TryAdd("use_rslora", false);
        fields.TryAdd("use_dora", false);
        fields.TryAdd("alpha_pattern", new Dictionary<string, object?>());
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        fields.RequireDefault("rank_pattern", null, "loading a resized AdaLoRA adapter (rank_pattern)");
        fields.RequireDefault("use_dora", false, "DoRA with AdaLoRA (PEFT rejects it too)");
        fields.RequireDefault("use_rslora", false, "rsLoRA scaling with AdaLoRA");
        fields.RequireDefault("bias", "none", "training biases with AdaLoRA");
        fields.RequireDefault("alpha_pattern", new Dictionary<string, object?>(), "alpha_pattern with AdaLoRA");
        TargetR = fields.Int("target_r", 8);
        InitR = fields.Int("init_r", 12);
        TInit = fields.Int("tinit", 0);
        TFinal = fields.Int("tfinal", 0);
        DeltaT = fields.Int("deltaT", 1);
        Beta1 = fields.Double("beta1", 0.85);
        Beta2 = fields.Double("beta2", 0.85);
        OrthRegWeight = fields.Double("orth_reg_weight", 0.5);
        TotalStep = fields.NullableInt("total_step");
        Rank = fields.Int("r", 8);
        Alpha = fields.Double("lora_alpha", 8);
        Dropout = fields.Double("lora_dropout", 0);
        TargetModules = fields.Selector("target_modules");
        ExcludeModules = fields.Selector("exclude_modules");
        FanInFanOut = fields.Bool("fan_in_fan_out", false);
        InitLoraWeights = fields.Take("init_lora_weights") switch
        {
            null or true => true,
            false => false,
            var other => throw fields.Wrong("init_lora_weights", "true or false for AdaLoRA", other),
        };
        LayersToTransform = fields.IntOrList("layers_to_transform");
        LayersPattern = fields.StringList("layers_pattern");
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator)
    {
        Validate();
        var targeted = LoraInjector.FindTargets(model, new TargetSpec("AdaLoRA", TargetModules, ExcludeModules, ModulesToSave, LayersToTransform, LayersPattern, TaskType));
        foreach (var (name, linear) in targeted)
        {
            if (linear is not AdaLoraLinear layer)
            {
                if (linear is ITunerLayer) throw new PeftConfigException($"'{name}' already carries {linear.GetType().Name} adapters; AdaLoRA cannot be added to it");
                FanInFanOut = linear is Models.Common.Conv1D;
                layer = new AdaLoraLinear(linear);
                LoraInjector.Replace(model, name, layer, "AdaLoRA");
            }
            layer.UpdateLayer(adapterName, InitR, Alpha, Dropout, InitLoraWeights, generator);
        }
        return targeted.Select(t => t.Name).ToList();
    }
}
