using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// DoRA's magnitude vector m [out] (PEFT's <c>DoraLinearLayer</c>, held under "lora_magnitude_vector.&lt;adapter&gt;"
/// with its parameter named "weight", saved as "…lora_magnitude_vector") and the DoRA term of the forward pass.
/// </summary>
/// <remarks>
/// DoRA (Liu et al. 2024) writes the adapted weight as m · (W + s·B·A) / ‖W + s·B·A‖ with the norm taken per output
/// row. As in the paper (Eq. 5) and PEFT, the norm is treated as a constant: it is computed without recording, so no
/// gradient flows through it, which keeps the backward as cheap as LoRA's. The forward never forms the adapted
/// weight for the input: with f = m/‖·‖ it adds (f − 1)·(x·Wᵀ) + s·(x·Aᵀ)·(f⊙B)ᵀ to the base output (PEFT scales
/// the [rows, out] LoRA result by f and s instead; the values agree to float rounding), reusing the base output when
/// there is no dropout (PEFT's <c>base_result</c> path) and recomputing x_dropped·Wᵀ otherwise. Compared with LoRA it
/// costs the norm (an out×r×in product, which PEFT pays at every forward; here it is cached by
/// <see cref="DoraWeightNorm"/> until W, A or B change, so inference pays it once) and about three element-wise
/// passes over the output.
/// </remarks>
public sealed class DoraMagnitude : Module
{
    private readonly Parameter weight;
    private readonly DoraWeightNorm norm = new();

    /// <summary>A magnitude vector holding <paramref name="initial"/> ([out], float32, taken over).</summary>
    public DoraMagnitude(Tensor initial)
    {
        ArgumentNullException.ThrowIfNull(initial);
        if (initial.Rank != 1) throw new ArgumentException($"DoRA magnitude must be a vector [out], got {initial}", nameof(initial));
        weight = RegisterParameter("weight", initial);
    }

    /// <summary>m [out].</summary>
    public Tensor Weight => weight.Value;

    /// <summary>
    /// ‖W + s·B·A‖ per output row ([out], not recorded: DoRA detaches it). <paramref name="baseWeight"/> is [out, in]
    /// (any strides, any float dtype the engine widens).
    /// </summary>
    public static Tensor WeightNorm(Tensor baseWeight, Tensor loraA, Tensor loraB, float scaling) =>
        DoraWeightNorm.Compute(baseWeight, loraA, loraB, scaling);

    /// <summary>How many times this adapter's forward has computed the weight norm (a cache hit does not count).</summary>
    internal int NormComputations => norm.Computations;

    /// <summary>Drops the cached weight norm (the base weight was replaced, e.g. by a merge).</summary>
    internal void ClearNormCache() => norm.Clear();

    /// <summary>
    /// The base weight of a DoRA-capable layer as [out, in] (a transposed view for a GPT-2 <see cref="Conv1D"/>), or a
    /// clear error for bases whose weight cannot be read as a dense matrix (4-bit quantized layers).
    /// </summary>
    public static Tensor DenseWeight(LinearLayer baseLayer) => baseLayer switch
    {
        Linear linear => linear.Weight,
        Conv1D conv => conv.Weight.Transpose(0, 1),
        _ => throw new NotSupportedException($"DoRA needs the base layer's dense weight; a {baseLayer.GetType().Name} base is not supported (dequantize it first)"),
    };

    /// <summary>The base layer's bias, or null.</summary>
    public static Tensor? DenseBias(LinearLayer baseLayer) => baseLayer switch
    {
        Linear linear => linear.Bias,
        Conv1D conv => conv.Bias,
        _ => null,
    };

    /// <summary>
    /// DoRA's addition to the running output: (f − 1)·base + f·s·(x·Aᵀ)·(B·M)ᵀ with f = m / ‖W + s·B·M·A‖ (constant;
    /// M is MoSLoRA's mixer, or none). <paramref name="baseResult"/> is the output computed so far (its bias is
    /// subtracted, as PEFT does), or null to recompute x·Wᵀ from <paramref name="x"/> (the dropped-out input while
    /// training with dropout).
    /// </summary>
    public Tensor Forward(Tensor x, Tensor loraA, Tensor loraB, Tensor? mixer, float scaling, LinearLayer baseLayer, Tensor? baseResult)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(loraB);
        var baseWeight = DenseWeight(baseLayer);
        var factor = Weight.Div(norm.Get(baseWeight, loraA, loraB, mixer, scaling));
        // f·s·(x·Aᵀ)·(B·M)ᵀ with f folded into B ([out, r]) and s into the [rows, r] product: two full-size
        // element-wise passes (and a row reduction for ∂m in the backward) fewer than scaling the [rows, out] result.
        var low = x.Linear(loraA).Mul(scaling);
        if (mixer is not null) low = low.Linear(mixer);
        var scaledLora = low.Linear(loraB.Mul(factor.Reshape(factor.Size(0), 1)));
        Tensor direction;
        if (baseResult is null)
        {
            direction = x.Linear(baseWeight);
        }
        else
        {
            var bias = DenseBias(baseLayer);
            direction = bias is null ? baseResult : baseResult.Sub(bias.DType == DType.Float32 ? bias : bias.To(DType.Float32));
        }
        return factor.Sub(1f).Mul(direction).Add(scaledLora);
    }
}
