using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// PaFi (peft_type "PAFI", this library's own; Liao et al., 2023): in each targeted linear layer only the
/// ⌈trainable_fraction·out·in⌉ entries of smallest magnitude are trained; the mask is fixed before training and the
/// learned values merge into W. Identity at initialisation (the learned values start at zero).
/// </summary>
/// <remarks>JSON keys: target_modules, exclude_modules, trainable_fraction (default 0.01). Saved keys
/// "&lt;layer&gt;.delta.values" [k] and "&lt;layer&gt;.delta.index" [k, 2] (row, column).</remarks>
public sealed class PafiConfig : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "PAFI";

    /// <summary>target_modules: the linear layers to fine-tune sparsely.</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules: never adapted, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>trainable_fraction: the share of each layer's weight entries trained (default 0.01).</summary>
    public double TrainableFraction { get; set; } = 0.01;

    /// <summary>The entries trained in a layer of <paramref name="count"/> weights: ⌈fraction·count⌉ (at least 1).</summary>
    public int TrainedCount(int count) => Math.Max(1, (int)Math.Ceiling(TrainableFraction * count));

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (!(TrainableFraction > 0 && TrainableFraction <= 1)) throw new PeftConfigException($"trainable_fraction must be in (0, 1], got {TrainableFraction}");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields)
    {
        fields["target_modules"] = TargetModules?.ToJsonValue();
        fields["exclude_modules"] = ExcludeModules?.ToJsonValue();
        fields["trainable_fraction"] = TrainableFraction;
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        TargetModules = BottleneckAdapterConfig.ReadSelector(fields, "target_modules");
        ExcludeModules = BottleneckAdapterConfig.ReadSelector(fields, "exclude_modules");
        TrainableFraction = fields.Double("trainable_fraction", 0.01);
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        WeightDeltaInjector.Inject(model, TargetModules, this, ExcludeModules, adapterName, (_, weight, _) => new PafiDelta(weight, TrainedCount(weight.Count)));
}
