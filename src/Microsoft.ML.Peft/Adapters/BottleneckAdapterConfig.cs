using System.Globalization;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// Bottleneck adapters (peft_type "BOTTLENECK_ADAPTER", this library's own: PEFT has no such method): a
/// down-projection to <see cref="BottleneckSize"/>, a non-linearity and an up-projection, added to a sub-layer's
/// output — serially after attention / feed-forward output projections (Houlsby et al., 2019) or in parallel with the
/// feed-forward block (He et al., 2022) — optionally magnitude-pruned to a fixed sparsity (sparse adapters).
/// </summary>
/// <remarks>
/// <para>JSON keys (default): target_modules (must be set; see <see cref="DefaultModules"/>), exclude_modules (null),
/// bottleneck_size (64), non_linearity ("relu"; also "gelu", "gelu_new", "silu"/"swish"), adapter_placement
/// ("serial" or "parallel"), scaling (1.0; He et al. use 4 for parallel adapters), parallel_input_modules (parallel
/// only: the feed-forward block's first projection, whose input the adapter reads; paired with each target by layer
/// index), sparsity (0: dense; else the fraction of each adapter weight matrix pruned at injection and kept at zero),
/// init_adapter_weights (true: up-projection zero so the model is unchanged at init; false: random, for tests).</para>
/// <para>Targets are output projections (o_proj/down_proj, attention.output.dense/output.dense, out_lin/lin2,
/// c_proj, dense/dense_4h_to_h): wrapping them puts the adapter exactly where Houlsby places it, before the residual
/// add, without touching the model code. Saved keys: "&lt;target&gt;.adapter_down.weight"/".bias",
/// "&lt;target&gt;.adapter_up.weight"/".bias", and for sparse adapters the 0/1 masks ".adapter_down.mask",
/// ".adapter_up.mask". Merging is impossible (the adapter is non-linear) and is refused.</para>
/// </remarks>
public sealed class BottleneckAdapterConfig : PeftConfig
{
    /// <summary>The non_linearity names accepted, with the activation each means.</summary>
    private static readonly (string Name, ActivationKind Kind)[] NonLinearities =
        [("relu", ActivationKind.Relu), ("gelu", ActivationKind.Gelu), ("gelu_new", ActivationKind.GeluTanh), ("silu", ActivationKind.Silu), ("swish", ActivationKind.Silu)];

    /// <inheritdoc/>
    public override string PeftType => "BOTTLENECK_ADAPTER";

    /// <summary>target_modules: the output projections to put adapters after (names / "." suffixes or a full-match regex).</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules: modules never adapted, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>bottleneck_size: the adapter's inner width (default 64).</summary>
    public int BottleneckSize { get; set; } = 64;

    /// <summary>non_linearity: "relu" (default), "gelu", "gelu_new", "silu" or "swish".</summary>
    public string NonLinearity { get; set; } = "relu";

    /// <summary>adapter_placement: serial (default) or parallel.</summary>
    public AdapterPlacement Placement { get; set; } = AdapterPlacement.Serial;

    /// <summary>scaling: the factor s on the adapter's output (default 1).</summary>
    public double Scaling { get; set; } = 1.0;

    /// <summary>parallel_input_modules: for parallel adapters, the feed-forward block's first projection (its input is the adapter's input).</summary>
    public ModuleSelector? ParallelInputModules { get; set; }

    /// <summary>sparsity: fraction of each adapter weight matrix pruned by magnitude at injection (0 = dense, default).</summary>
    public double Sparsity { get; set; }

    /// <summary>init_adapter_weights: up-projection zero (identity at init, default) or random.</summary>
    public bool InitAdapterWeights { get; set; } = true;

    /// <summary>The activation <see cref="NonLinearity"/> names.</summary>
    internal ActivationKind Activation => NonLinearities.First(n => n.Name == NonLinearity).Kind;

    /// <summary>
    /// Houlsby placements (serial: after attention and after the feed-forward block) and the parallel pair (FFN output
    /// projection, FFN input projection) for a Hugging Face model_type, or null.
    /// </summary>
    public static (ModuleSelector Serial, ModuleSelector ParallelTargets, ModuleSelector ParallelInputs)? DefaultModules(string modelType) => modelType switch
    {
        "llama" or "mistral" or "qwen2" => (new[] { "o_proj", "down_proj" }, new[] { "down_proj" }, new[] { "up_proj" }),
        "bert" or "roberta" => (new[] { "output.dense" }, ModuleSelector.FromPattern(@".*\.layer\.\d+\.output\.dense"), new[] { "intermediate.dense" }),
        "distilbert" => (new[] { "out_lin", "lin2" }, new[] { "lin2" }, new[] { "lin1" }),
        "gpt2" => (new[] { "c_proj" }, new[] { "mlp.c_proj" }, new[] { "mlp.c_fc" }),
        "gpt_neox" => (new[] { "attention.dense", "dense_4h_to_h" }, new[] { "dense_4h_to_h" }, new[] { "dense_h_to_4h" }),
        _ => null,
    };

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (BottleneckSize <= 0) throw new PeftConfigException($"bottleneck_size must be positive, got {BottleneckSize}");
        if (!NonLinearities.Any(n => n.Name == NonLinearity))
            throw new PeftConfigException($"non_linearity '{NonLinearity}' is not supported; supported: {string.Join(", ", NonLinearities.Select(n => n.Name))}");
        if (!double.IsFinite(Scaling)) throw new PeftConfigException($"scaling must be finite, got {Scaling}");
        if (!(Sparsity >= 0 && Sparsity < 1)) throw new PeftConfigException($"sparsity must be in [0, 1), got {Sparsity}");
        if (Placement == AdapterPlacement.Parallel && ParallelInputModules is null)
            throw new PeftConfigException("adapter_placement 'parallel' needs parallel_input_modules: the feed-forward block's first projection (e.g. [\"up_proj\"], [\"intermediate.dense\"], [\"lin1\"], [\"mlp.c_fc\"])");
        if (Placement == AdapterPlacement.Serial && ParallelInputModules is not null)
            throw new PeftConfigException("parallel_input_modules applies to adapter_placement 'parallel' only");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["bottleneck_size"] = BottleneckSize;
        fields["non_linearity"] = NonLinearity;
        fields["adapter_placement"] = Placement == AdapterPlacement.Serial ? "serial" : "parallel";
        fields["scaling"] = Scaling;
        fields["parallel_input_modules"] = ParallelInputModules?.ToJsonValue();
        fields["sparsity"] = Sparsity;
        fields["init_adapter_weights"] = InitAdapterWeights;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        TargetModules = ReadSelector(fields, "target_modules");
        ExcludeModules = ReadSelector(fields, "exclude_modules");
        BottleneckSize = fields.Int("bottleneck_size", 64);
        NonLinearity = fields.String("non_linearity") ?? "relu";
        Placement = fields.String("adapter_placement") switch
        {
            null or "serial" => AdapterPlacement.Serial,
            "parallel" => AdapterPlacement.Parallel,
            var other => throw new PeftConfigException($"{fields.Source}: 'adapter_placement' must be \"serial\" or \"parallel\", got \"{other}\""),
        };
        Scaling = fields.Double("scaling", 1.0);
        ParallelInputModules = ReadSelector(fields, "parallel_input_modules");
        Sparsity = fields.Double("sparsity", 0);
        InitAdapterWeights = fields.Bool("init_adapter_weights", true);
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        BottleneckAdapterInjector.Inject(model, this, adapterName, generator);

    /// <summary>A selector from a string (regex) or list (names) field, or null.</summary>
    internal static ModuleSelector? ReadSelector(ConfigFields fields, string key) => fields.StringOrList(key) switch
    {
        (null, null) => null,
        (string pattern, _) => ModuleSelector.FromPattern(pattern),
        (_, var list) => ModuleSelector.FromNames(list!),
    };

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{PeftType}({Placement}, b={BottleneckSize}, {NonLinearity}, s={Scaling}, sparsity={Sparsity})");
}
