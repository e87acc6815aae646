using Microsoft.ML.Peft.Adapters;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Selective;

/// <summary>How Freeze-and-Reconfigure picks the trainable rows (or columns) of a layer.</summary>
public enum FarSelection
{
    /// <summary>"magnitude": the rows (columns) of largest L1 norm ‖W[r, :]‖₁ (‖W[:, c]‖₁).</summary>
    Magnitude,

    /// <summary>"gradient": the rows (columns) of largest summed |∂L/∂W| over a few batches (<see cref="FreezeAndReconfigure.SelectByGradient"/>).</summary>
    Gradient,
}

/// <summary>Which axis of the weight Freeze-and-Reconfigure splits into trainable and frozen groups.</summary>
public enum FarSplit
{
    /// <summary>"rows": output neurons (weight rows and their biases).</summary>
    Rows,

    /// <summary>"columns": input features (weight columns).</summary>
    Columns,
}

/// <summary>
/// Freeze-and-Reconfigure (peft_type "FAR", this library's own; Vucetic et al., 2022): each targeted linear layer's
/// output rows (or input columns) are split into ⌈trainable_fraction·n⌉ trainable ones and frozen ones; only the
/// trainable group's weights (and, for rows, biases) change (<see cref="FarDelta"/>), and merging writes them back.
/// </summary>
/// <remarks>
/// JSON keys (default): target_modules, exclude_modules, trainable_fraction (0.1), split ("rows" or "columns"),
/// selection ("magnitude" or "gradient"), indices ({layer path: [rows or columns]}; filled at injection, so a saved
/// adapter reloads the same group). "gradient" needs the group chosen before injection by
/// <see cref="FreezeAndReconfigure.SelectByGradient"/>. Saved keys "&lt;layer&gt;.delta.weight" ([k, in] for rows,
/// [out, k] for columns) and "&lt;layer&gt;.delta.bias" [k] (rows).
/// </remarks>
public sealed class FarConfig : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "FAR";

    /// <summary>target_modules: the linear layers to reconfigure (FaR targets the feed-forward layers).</summary>
    public ModuleSelector? TargetModules { get; set; }

    /// <summary>exclude_modules: never adapted, or null.</summary>
    public ModuleSelector? ExcludeModules { get; set; }

    /// <summary>trainable_fraction: the share of each layer's rows (columns) trained (default 0.1).</summary>
    public double TrainableFraction { get; set; } = 0.1;

    /// <summary>split: rows (output neurons, default) or columns (input features).</summary>
    public FarSplit Split { get; set; } = FarSplit.Rows;

    /// <summary>selection: how the group is chosen when <see cref="Indices"/> has none for a layer.</summary>
    public FarSelection Selection { get; set; } = FarSelection.Magnitude;

    /// <summary>indices: the trainable rows (columns) of each layer by dotted path (filled at injection).</summary>
    public IDictionary<string, IReadOnlyList<int>> Indices { get; } = new SortedDictionary<string, IReadOnlyList<int>>(StringComparer.Ordinal);

    /// <summary>How many of <paramref name="available"/> rows (columns) are trained: ⌈fraction·n⌉ (at least 1).</summary>
    public int TrainedCount(int available) => Math.Max(1, (int)Math.Ceiling(TrainableFraction * available));

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
        fields["split"] = Split == FarSplit.Rows ? "rows" : "columns";
        fields["selection"] = Selection == FarSelection.Magnitude ? "magnitude" : "gradient";
        fields["indices"] = Indices.ToDictionary(kv => kv.Key, kv => (object?)kv.Value.Cast<object?>().ToList(), StringComparer.Ordinal);
    }

    private protected override void ReadFields(ConfigFields fields)
    {
        TargetModules = BottleneckAdapterConfig.ReadSelector(fields, "target_modules");
        ExcludeModules = BottleneckAdapterConfig.ReadSelector(fields, "exclude_modules");
        TrainableFraction = fields.Double("trainable_fraction", 0.1);
        Split = fields.String("split") switch
        {
            null or "rows" => FarSplit.Rows,
            "columns" => FarSplit.Columns,
            var other => throw new PeftConfigException($"{fields.Source}: 'split' must be \"rows\" or \"columns\", got \"{other}\""),
        };
        Selection = fields.String("selection") switch
        {
            null or "magnitude" => FarSelection.Magnitude,
            "gradient" => FarSelection.Gradient,
            var other => throw new PeftConfigException($"{fields.Source}: 'selection' must be \"magnitude\" or \"gradient\", got \"{other}\""),
        };
        Indices.Clear();
        switch (fields.Take("indices"))
        {
            case null:
                break;
            case IReadOnlyDictionary<string, object?> map:
                foreach (var (path, value) in map)
                {
                    if (value is not IReadOnlyList<object?> list || list.Any(v => v is not PythonJsonNumber))
                        throw fields.Wrong("indices", "an object mapping layer paths to lists of row or column numbers", map);
                    Indices[path] = list.Select(v => int.Parse(((PythonJsonNumber)v!).RawText, System.Globalization.CultureInfo.InvariantCulture)).ToList();
                }
                break;
            case var other:
                throw fields.Wrong("indices", "an object mapping layer paths to lists of row or column numbers", other);
        }
    }

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        WeightDeltaInjector.Inject(model, TargetModules, this, ExcludeModules, adapterName, (path, weight, layer) =>
        {
            int available = Split == FarSplit.Rows ? weight.Size(0) : weight.Size(1);
            if (!Indices.TryGetValue(path, out var chosen))
            {
                if (Selection == FarSelection.Gradient)
                    throw new PeftConfigException($"FAR selection 'gradient' has no indices for '{path}': choose them first with FreezeAndReconfigure.SelectByGradient(model, config, loss)");
                chosen = FreezeAndReconfigure.Top(FreezeAndReconfigure.L1Norms(weight, Split), TrainedCount(available));
                Indices[path] = chosen;
            }
            if (chosen.Any(r => r < 0 || r >= available))
                throw new PeftConfigException($"FAR indices for '{path}' [{string.Join(", ", chosen)}] lie outside its {available} {(Split == FarSplit.Rows ? "rows" : "columns")}");
            bool hasBias = layer is Linear { Bias: not null } || layer is Models.Common.Conv1D;
            return new FarDelta(weight.Size(0), weight.Size(1), chosen, Split, hasBias);
        });
}
