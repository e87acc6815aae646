using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Adapters;

/// <summary>
/// AdapterFusion (peft_type "ADAPTER_FUSION", this library's own; Pfeiffer et al., 2021): several trained serial
/// bottleneck adapters, loaded frozen from their folders, mixed at every adapted layer by a trained attention
/// (<see cref="Adapters.AdapterFusion"/>). Only the fusion's query/key/value are trained and saved.
/// </summary>
/// <remarks>
/// JSON keys: adapter_paths (the folders of the BOTTLENECK_ADAPTER adapters to fuse, at least two, all serial and on
/// the same modules). Loading a saved fusion reads those folders again, so they must still exist. Saved keys:
/// "&lt;target&gt;.adapter_fusion.query.weight" / ".query.bias" / ".key.weight" / ".key.bias" / ".value.weight".
/// Inside the model the fused adapters are named "&lt;fusion name&gt;_0", "&lt;fusion name&gt;_1", ... in path order.
/// </remarks>
public sealed class AdapterFusionConfig : PeftConfig
{
    /// <inheritdoc/>
    public override string PeftType => "ADAPTER_FUSION";

    /// <summary>adapter_paths: folders holding the trained adapters (adapter_config.json + adapter_model.safetensors).</summary>
    public IList<string> AdapterPaths { get; set; } = [];

    /// <inheritdoc/>
    public override void Validate()
    {
        base.Validate();
        if (AdapterPaths.Count < 2) throw new PeftConfigException($"ADAPTER_FUSION needs at least two adapter_paths, got {AdapterPaths.Count}");
        if (AdapterPaths.Any(string.IsNullOrEmpty)) throw new PeftConfigException("adapter_paths entries must be non-empty folder names");
    }

    private protected override void WriteFields(Dictionary<string, object?> fields) =>
        fields["adapter_paths"] = AdapterPaths.Cast<object?>().ToList();

    private protected override void ReadFields(ConfigFields fields) =>
        AdapterPaths = fields.StringOrList("adapter_paths") switch
        {
            (null, null) => [],
            (string single, _) => [single],
            (_, var list) => list!,
        };

    private protected override IReadOnlyList<string> InjectInto(Module model, string adapterName, Generator generator) =>
        AdapterFusionInjector.Inject(model, this, adapterName, generator);
}
