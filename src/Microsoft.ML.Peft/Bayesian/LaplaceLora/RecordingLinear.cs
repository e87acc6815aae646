using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// A <see cref="Linear"/> over the SAME weight tensor as the LoRA sub-layer it temporarily replaces, which can record
/// what K-FAC needs: the layer input x and the gradient of the loss with respect to the layer output y = x·Wᵀ.
/// </summary>
/// <remarks>
/// Why a replacement layer and not an engine hook: the engine has no "retain grad" for intermediate tensors. Adding a
/// zero leaf tensor z (requires grad) to the output, y' = y + z, leaves the forward unchanged and makes z.Grad = ∂L/∂y
/// after backward, with no engine change. The probe only exists while <see cref="Recording"/> is on.
/// </remarks>
internal sealed class RecordingLinear : Linear
{
    private readonly List<(Tensor Input, Tensor Probe)> records = [];

    public RecordingLinear(Tensor weight) : base(weight) { }

    /// <summary>Whether the next forwards record input and output-gradient probe.</summary>
    public bool Recording { get; set; }

    /// <summary>(input, probe) per forward since the last <see cref="Clear"/>; probe.Grad is ∂L/∂output after backward.</summary>
    public IReadOnlyList<(Tensor Input, Tensor Probe)> Records => records;

    public void Clear() => records.Clear();

    public override Tensor Forward(Tensor input)
    {
        var y = input.Linear(Weight);
        if (!Recording) return y;
        var probe = Tensor.Zeros(y.ShapeArray());
        probe.RequiresGrad = true;
        records.Add((input.Detach(), probe));
        return y.Add(probe);
    }
}
