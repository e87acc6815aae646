using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// Diff pruning (peft_type "DIFF_PRUNING", this library's own; Guo et al., 2021): each targeted linear layer learns a
/// dense difference δ = w ⊙ z with hard-concrete gates z and a relaxed L0 penalty λ·E[‖z‖₀]; merging magnitude-prunes
/// δ to ⌈keep_fraction·out·in⌉ entries and adds it to W (<see cref="DiffPruningDelta"/>).
/// </summary>
/// <remarks>
/// JSON keys (default): target_modules, exclude_modules, keep_fraction (0.005, Guo et al.'s 0.5 %), l0_penalty λ
/// (1e-5, per forward pass), init_log_alpha (3: every gate starts open), hard_concrete_beta β (1), limit_left γ (−1.5),
/// limit_right ζ (1.5) — the stretch Guo et al. use. Training holds two dense tensors per layer (w, log α): diff
/// pruning saves storage at the end, not memory while training. Saved keys "&lt;layer&gt;.delta.weight",
/// "&lt;layer&gt;.delta.log_alpha".
/// </remarks>
public sealed class DiffPruningConfig : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "DIFF_PRUNING";

    /// <summary>target_modules: the linear layers whose weights get a learned difference.</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules: never adapted, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>keep_fraction: the share of each layer's entries δ keeps after the final magnitude pruning (default 0.005).</summary>
    public double KeepFraction { get; set; } = 0.005;

    /// <summary>l0_penalty: λ, the weight of the expected-L0 penalty (default 1e-5).</summary>
    public double L0Penalty { get; set; } = 1e-5;

    /// <summary>init_log_alpha: the initial log α of every gate (default 3).</summary>
    public double InitLogAlpha { get; set; } = 3;

    /// <summary>hard_concrete_beta: the gate temperature β (default 1).</summary>
    public double Beta { get; set; } = 1;

    /// <summary>limit_left: the stretch's lower end γ &lt; 0 (default −1.5).</summary>
    public double LimitLeft { get; set; } = -1.5;

    /// <summary>limit_right: the stretch's upper end ζ &gt; 1 (default 1.5).</summary>
    public double LimitRight { get; set; } = 1.5;

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (!(KeepFraction > 0 && KeepFraction <= 1)) throw new PeftConfigException($"keep_fraction must be in (0, 1], got {KeepFraction}");
        if (!(L0Penalty >= 0) || !double.IsFinite(L0Penalty)) throw new PeftConfigException($"l0_penalty must be a finite non-negative number, got {L0Penalty}");
        if (!(Beta > 0) || !double.IsFinite(Beta)) throw new PeftConfigException($"hard_concrete_beta must be positive, got {Beta}");
        if (!(LimitLeft < 0) || !(LimitRight > 1)) throw new PeftConfigException($"the hard-concrete stretch needs limit_left < 0 and limit_right > 1, got {LimitLeft} and {LimitRight}");
        if (!double.IsFinite(InitLogAlpha)) throw new PeftConfigException($"init_log_alpha must be finite, got {InitLogAlpha}");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["keep_fraction"] = KeepFraction;
        fields["l0_penalty"] = L0Penalty;
        fields["init_log_alpha"] = InitLogAlpha;
        fields["hard_concrete_beta"] = Beta;
        fields["limit_left"] = LimitLeft;
        fields["limit_right"] = LimitRight;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        TargetModules = BottleneckAdapterConfig.ReadSelector(fields, "target_modules");
        ExcludeModules = BottleneckAdapterConfig.ReadSelector(fields, "exclude_modules");
        KeepFraction = fields.Double("keep_fraction", 0.005);
        L0Penalty = fields.Double("l0_penalty", 1e-5);
        InitLogAlpha = fields.Double("init_log_alpha", 3);
        Beta = fields.Double("hard_concrete_beta", 1);
        LimitLeft = fields.Double("limit_left", -1.5);
        LimitRight = fields.Double("limit_right", 1.5);
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        WeightDeltaInjector.Inject(model, TargetModules, this, ExcludeModules, adapterName, (_, weight, _) => new DiffPruningDelta(weight.Size(0), weight.Size(1), this, generator));
}
