namespace Microsoft.ML.Peft.Adapters;

/// <summary>Where a bottleneck adapter reads its input from (adapter_placement in adapter_config.json).</summary>
public enum AdapterPlacement
{
    /// <summary>
    /// "serial" (Houlsby et al., 2019): after a sub-layer's output projection, y ← y + s·up(f(down(y))), before the
    /// block's residual add and layer norm.
    /// </summary>
    Serial,

    /// <summary>
    /// "parallel" (He et al., 2022): beside the feed-forward block, FFN(x) ← FFN(x) + s·up(f(down(x))) with x the
    /// block's input (what its first projection reads).
    /// </summary>
    Parallel,
}
