using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.IA3;

/// <summary>
/// (IA)³ — "Infused Adapter by Inhibiting and Amplifying Inner Activations" (PEFT's <c>IA3Config</c>, peft_type "IA3"):
/// one learned vector per targeted linear layer, initialised to ones, scaling the output of attention keys/values and
/// the input of the feed-forward output projection.
/// </summary>
/// <remarks>
/// JSON keys: target_modules, exclude_modules, feedforward_modules, fan_in_fan_out, init_ia3_weights, plus the
/// <see cref="PeftConfig"/> keys (modules_to_save, task_type, ...). feedforward_modules must be a subset of
/// target_modules when both are lists, as PEFT checks.
/// </remarks>
public sealed class IA3Config : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "IA3";

    /// <summary>target_modules: names / "." suffixes, a full-match regex, or "all-linear". Must be set before injection.</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules: modules never adapted, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>
    /// feedforward_modules: targets whose input (not output) is scaled. A list matches a module whose name ends with
    /// an entry (PEFT's plain <c>endswith</c>, no "." boundary); a string is a full-match regex.
    /// </summary>
    public ModuleSelector? FeedForwardModules { get; set; }

    /// <summary>fan_in_fan_out: kept for round trips; every <see cref="LinearLayer"/> is [out, in], so it must be false.</summary>
    public bool FanInFanOut { get; set; }

    /// <summary>init_ia3_weights: vectors start at ones (the identity) when true (default), standard normal otherwise.</summary>
    public bool InitIA3Weights { get; set; } = true;

    /// <summary>PEFT's default (target_modules, feedforward_modules) for a Hugging Face model_type, or null.</summary>
    public static (IReadOnlyList<string> Targets, IReadOnlyList<string> FeedForward)? DefaultModules(string modelType) => modelType switch
    {
        "llama" or "mistral" or "qwen2" => (["k_proj", "v_proj", "down_proj"], ["down_proj"]),
        "bert" or "roberta" or "xlm-roberta" => (["key", "value", "output.dense"], ["output.dense"]),
        "gpt2" => (["c_attn", "mlp.c_proj"], ["mlp.c_proj"]),
        _ => null,
    };

    /// <summary>Whether a targeted module scales its input (PEFT's <c>_check_target_module_feedforward</c>).</summary>
    public bool IsFeedForward(string moduleName)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        if (FeedForwardModules is null) return false;
        if (FeedForwardModules.Names is { } names) return names.Any(n => moduleName.EndsWith(n, StringComparison.Ordinal));
        return FeedForwardModules.Matches(moduleName);
    }

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (FanInFanOut)
            throw new PeftConfigException("fan_in_fan_out = true is not supported: every LinearLayer stores its weight as [out, in]");
        if (FeedForwardModules?.IsAllLinear == true)
            throw new PeftConfigException("feedforward_modules cannot be 'all-linear'");
        if (TargetModules?.Names is { } targets && FeedForwardModules?.Names is { } feedForward)
        {
            var extra = feedForward.Where(f => !targets.Contains(f, StringComparer.Ordinal)).ToList();
            if (extra.Count > 0)
                throw new PeftConfigException($"feedforward_modules must be a subset of target_modules; [{string.Join(", ", extra)}] are not in target_modules {TargetModules}");
        }
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["feedforward_modules"] = FeedForwardModules?.ToJsonValue();
        fields["fan_in_fan_out"] = FanInFanOut;
        fields["init_ia3_weights"] = InitIA3Weights;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        TargetModules = fields.Selector("target_modules");
        ExcludeModules = fields.Selector("exclude_modules");
        FeedForwardModules = fields.Selector("feedforward_modules");
        FanInFanOut = fields.Bool("fan_in_fan_out", false);
        InitIA3Weights = fields.Bool("init_ia3_weights", true);
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        IA3Injector.Inject(model, this, adapterName, generator);
}
