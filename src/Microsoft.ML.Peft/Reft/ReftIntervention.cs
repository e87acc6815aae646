using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Reft;

/// <summary>Which edit a ReFT intervention applies to a hidden state h (pyreft's intervention classes).</summary>
public enum ReftInterventionType
{
    /// <summary>pyreft's <c>LoreftIntervention</c>: Φ(h) = h + Rᵀ(W·h + b − R·h), R with orthonormal rows.</summary>
    Loreft,

    /// <summary>pyreft's <c>DireftIntervention</c>: Φ(h) = h + Rᵀ(W·h + b) — no subtraction of R·h.</summary>
    Direft,
}

/// <summary>
/// One ReFT intervention (one layer, one group of positions): <c>rotate_layer</c> holds R [r, d] through its
/// <see cref="HouseholderRotation"/>, <c>learned_source</c> is the linear layer W [r, d], b [r] (torch.nn.Linear's
/// initialisation, as pyreft's). Trainable parameters: r·(2d + 1).
/// </summary>
public sealed class ReftIntervention : Module
{
    private readonly ModuleSlot<HouseholderRotation> rotateLayer;
    private readonly ModuleSlot<Linear> learnedSource;

    /// <summary>A freshly initialised intervention (V, then W and b, drawn from <paramref name="generator"/>).</summary>
    public ReftIntervention(ReftInterventionType type, int rank, int hidden, Generator generator)
    {
        Type = type;
        rotateLayer = RegisterModule("rotate_layer", new HouseholderRotation(rank, hidden, generator));
        learnedSource = RegisterModule("learned_source", new Linear(hidden, rank, generator));
    }

    /// <summary>LoReFT or DiReFT.</summary>
    public ReftInterventionType Type { get; }

    /// <summary>The orthonormal projection's parametrisation.</summary>
    public HouseholderRotation RotateLayer => rotateLayer.Module;

    /// <summary>W [r, d] and b [r].</summary>
    public Linear LearnedSource => learnedSource.Module;

    /// <summary>
    /// Φ(h) for hidden states [..., d] (before intervention dropout). R is built once per call and shared by every
    /// position; the two [.., r] products are small GEMMs over all positions of the batch.
    /// </summary>
    public Tensor Forward(Tensor hidden)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        var r = RotateLayer.Weight();
        var source = LearnedSource.Forward(hidden);                       // W·h + b   [.., r]
        var edit = Type == ReftInterventionType.Loreft ? source.Sub(hidden.Linear(r)) : source; // − R·h for LoReFT
        return hidden.Add(edit.MatMul(r));                                // h + Rᵀ(…)
    }
}
