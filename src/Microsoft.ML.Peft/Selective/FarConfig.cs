using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>How Freeze-and-Reconfigure picks the trainable rows of a layer.</summary>
public enum FarSelection
{
    /// <summary>"magnitude": the rows of largest L1 norm ‖W[r, :]‖₁.</summary>
    Magnitude,

    /// <summary>"gradient": the rows of largest Σ|∂L/∂W[r, :]| over a few batches (<see cref="FreezeAndReconfigure.SelectRowsByGradient"/>).</summary>
    Gradient,
}

/// <summary>
/// Freeze-and-Reconfigure (peft_type "FAR", this library's own; Vucetic et al., 2022): each targeted linear layer's
/// output rows are split into ⌈trainable_fraction·out⌉ trainable rows and frozen ones; only the trainable rows' weights
/// and biases change (<see cref="FarDelta"/>), and merging writes them back into W and b.
/// </summary>
/// <remarks>
/// JSON keys (default): target_modules, exclude_modules, trainable_fraction (0.1), selection ("magnitude" or
/// "gradient"), row_indices ({layer path: [rows]}; filled at injection, so a saved adapter reloads the same rows).
/// "gradient" needs the rows chosen before injection by <see cref="FreezeAndReconfigure.SelectRowsByGradient"/>.
/// Saved keys "&lt;layer&gt;.delta.weight" [k, in], "&lt;layer&gt;.delta.bias" [k].
/// </remarks>
public sealed class FarConfig : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "FAR";

    /// <summary>target_modules: the linear layers to reconfigure (FaR targets the feed-forward layers).</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules: never adapted, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>trainable_fraction: the share of each layer's output rows trained (default 0.1).</summary>
    public double TrainableFraction { get; set; } = 0.1;

    /// <summary>selection: how rows are chosen when <see cref="RowIndices"/> has none for a layer.</summary>
    public FarSelection Selection { get; set; } = FarSelection.Magnitude;

    /// <summary>row_indices: the trainable rows of each layer by dotted path (filled at injection).</summary>
    public IDictionary<string, IReadOnlyList<int>> RowIndices { get; } = new SortedDictionary<string, IReadOnlyList<int>>(StringComparer.Ordinal);

    /// <summary>The rows trained in a layer with <paramref name="outFeatures"/> outputs: ⌈fraction·out⌉ (at least 1).</summary>
    public int TrainedRows(int outFeatures) => Math.Max(1, (int)Math.Ceiling(TrainableFraction * outFeatures));

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
        fields["selection"] = Selection == FarSelection.Magnitude ? "magnitude" : "gradient";
        fields["row_indices"] = RowIndices.ToDictionary(kv => kv.Key, kv => (object?)kv.Value.Cast<object?>().ToList(), StringComparer.Ordinal);
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        TargetModules = BottleneckAdapterConfig.ReadSelector(fields, "target_modules");
        ExcludeModules = BottleneckAdapterConfig.ReadSelector(fields, "exclude_modules");
        TrainableFraction = fields.Double("trainable_fraction", 0.1);
        Selection = fields.String("selection") switch
        {
            null or "magnitude" => FarSelection.Magnitude,
            "gradient" => FarSelection.Gradient,
            var other => throw new PeftConfigException($"{fields.Source}: 'selection' must be \"magnitude\" or \"gradient\", got \"{other}\""),
        };
        RowIndices.Clear();
        switch (fields.Take("row_indices"))
        {
            case null:
                break;
            case IReadOnlyDictionary<string, object?> map:
                foreach (var (path, value) in map)
                {
                    if (value is not IReadOnlyList<object?> list || list.Any(v => v is not PythonJsonNumber))
                        throw fields.Wrong("row_indices", "an object mapping layer paths to lists of row numbers", map);
                    RowIndices[path] = list.Select(v => int.Parse(((PythonJsonNumber)v!).RawText, System.Globalization.CultureInfo.InvariantCulture)).ToList();
                }
                break;
            case var other:
                throw fields.Wrong("row_indices", "an object mapping layer paths to lists of row numbers", other);
        }
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        WeightDeltaInjector.Inject(model, TargetModules, this, ExcludeModules, adapterName, (path, weight, layer) =>
        {
            if (!RowIndices.TryGetValue(path, out var rows))
            {
                if (Selection == FarSelection.Gradient)
                    throw new PeftConfigException($"FAR selection 'gradient' has no rows for '{path}': choose them first with FreezeAndReconfigure.SelectRowsByGradient(model, config, loss)");
                rows = FreezeAndReconfigure.TopRows(FreezeAndReconfigure.RowL1Norms(weight), TrainedRows(weight.Size(0)));
                RowIndices[path] = rows;
            }
            if (rows.Any(r => r < 0 || r >= weight.Size(0)))
                throw new PeftConfigException($"FAR row_indices for '{path}' [{string.Join(", ", rows)}] lie outside its {weight.Size(0)} output rows");
            bool hasBias = layer is Linear { Bias: not null } || layer is Models.Common.Conv1D;
            return new FarDelta(weight.Size(0), weight.Size(1), rows, hasBias);
        });
}
