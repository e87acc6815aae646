using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// A layer that a PEFT method put in place of a base module (PEFT's <c>BaseTunerLayer</c>): it holds one or more
/// named adapters over a frozen base layer, any subset of them active, and can fold them into the base weight.
/// <see cref="PeftModel"/> drives every method's layers through this interface only.
/// </summary>
public interface ITunerLayer
{
    /// <summary>The wrapped base module (what <see cref="PeftModel.Unload"/> puts back).</summary>
    Module BaseLayer { get; }

    /// <summary>Every adapter on this layer, in the order they were added.</summary>
    IReadOnlyList<string> AdapterNames { get; }

    /// <summary>The adapters applied in the forward pass.</summary>
    IReadOnlyList<string> ActiveAdapters { get; }

    /// <summary>Adapters whose update is currently folded into the base weight.</summary>
    IReadOnlyList<string> MergedAdapters { get; }

    /// <summary>
    /// False while adapters are disabled: the layer then computes the base layer alone. Disabling a layer with merged
    /// adapters unmerges them first (as PEFT does).
    /// </summary>
    bool AdaptersEnabled { get; set; }

    /// <summary>
    /// Activates <paramref name="adapterNames"/> (each must exist here; unknown names are ignored only when
    /// <paramref name="ignoreMissing"/>). Active adapters' parameters become trainable unless
    /// <paramref name="trainable"/> is false; all others are frozen. Unmerges first when anything is merged.
    /// </summary>
    void SetActiveAdapters(IReadOnlyList<string> adapterNames, bool trainable, bool ignoreMissing = false);

    /// <summary>Freezes or unfreezes one adapter's parameters.</summary>
    void SetAdapterTrainable(string adapterName, bool trainable);

    /// <summary>Folds the given adapters (default: the active ones) into the base weight.</summary>
    void Merge(IReadOnlyList<string>? adapterNames = null, bool safeMerge = false);

    /// <summary>Subtracts every merged adapter from the base weight again.</summary>
    void Unmerge();

    /// <summary>
    /// One adapter's tensors as saved in PEFT files, keyed by the suffix that follows the layer's module path
    /// ("lora_A.weight", "lora_B.weight"), i.e. with the adapter name removed.
    /// </summary>
    IEnumerable<(string Suffix, Tensor Tensor)> AdapterTensors(string adapterName);
}
