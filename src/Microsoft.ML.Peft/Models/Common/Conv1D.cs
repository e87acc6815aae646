using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Common;

/// <summary>
/// GPT-2's <c>Conv1D</c>: y = x·W + b with the weight stored <b>[in, out]</b> (the transpose of torch.nn.Linear), exactly
/// as in Hugging Face checkpoints, so <see cref="Module.StateDict"/> shapes equal the checkpoint's and loading is
/// zero-copy. The forward hands the engine a transposed <em>view</em> [out, in] of the weight; the GEMM reads it through
/// a transpose flag, so no copy is ever made.
/// </summary>
/// <remarks>
/// For PEFT methods this is a <see cref="LinearLayer"/> like any other (<see cref="InFeatures"/>,
/// <see cref="OutFeatures"/>, <see cref="Forward"/>); only code that touches the weight itself (LoRA merge/unmerge)
/// must honour <see cref="FanInFanOut"/> = true and add ΔWᵀ = (B·A)ᵀ to <see cref="Weight"/>, as PEFT does with
/// <c>fan_in_fan_out=True</c> for GPT-2.
/// </remarks>
public sealed class Conv1D : LinearLayer
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    /// <summary>A layer over existing tensors: <paramref name="weight"/> [in, out] and <paramref name="bias"/> [out].</summary>
    public Conv1D(Tensor weight, Tensor bias)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(bias);
        if (weight.Rank != 2) throw new ArgumentException($"Conv1D: weight {weight} must be [in_features, out_features]");
        if (bias.Rank != 1 || bias.Size(0) != weight.Size(1))
            throw new ArgumentException($"Conv1D: bias {bias} must be [{weight.Size(1)}] to match weight {weight}");
        this.weight = RegisterParameter("weight", weight);
        this.bias = RegisterParameter("bias", bias);
    }

    /// <summary>The weight as stored, [in, out].</summary>
    public Tensor Weight => weight.Value;

    /// <summary>The bias [out].</summary>
    public Tensor Bias => bias.Value;

    /// <summary>Always true: the stored weight is [in, out] (PEFT's <c>fan_in_fan_out</c>).</summary>
    public static bool FanInFanOut => true;

    /// <inheritdoc/>
    public override int InFeatures => weight.Value.Size(0);

    /// <inheritdoc/>
    public override int OutFeatures => weight.Value.Size(1);

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Linear(Weight.Transpose(0, 1), Bias);
}
