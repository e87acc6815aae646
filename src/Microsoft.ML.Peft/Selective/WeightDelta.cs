using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// A learned change ΔW (and optionally Δb) of one linear layer's weight, held apart from the frozen weight so the base
/// model stays intact until it is merged: what FaR, PaFi and diff pruning train. The layer computes
/// y = base(x) + <see cref="Forward"/>(x), i.e. x·(W + ΔW)ᵀ + b + Δb.
/// </summary>
public abstract class WeightDelta : Module
{
    /// <summary>The contribution x·ΔWᵀ (+ Δb) for an input [..., in], as [..., out].</summary>
    public abstract Tensor Forward(Tensor input);

    /// <summary>ΔW as a dense [out, in] tensor (no gradient), as it is folded into the weight on merge.</summary>
    public abstract Tensor DenseWeight();

    /// <summary>Δb as a dense [out] tensor, or null when the method leaves the bias alone.</summary>
    public virtual Tensor? DenseBias() => null;

    /// <summary>
    /// Called before a merge: methods whose trained form differs from what they fold in (diff pruning magnitude-prunes
    /// δ to its target count) make their forward equal to the folded form here. Nothing by default.
    /// </summary>
    public virtual void FinalizeDelta()
    {
    }

    /// <summary>The tensors saved for this adapter, keyed by suffix after "&lt;layer&gt;.delta." (parameters and fixed indices).</summary>
    public abstract IEnumerable<(string Suffix, Tensor Tensor)> SavedTensors();
}
