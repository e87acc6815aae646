using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.NN;

/// <summary>
/// Anything that maps [..., in] to [..., out] like a linear layer. Model code holds <c>ModuleSlot&lt;LinearLayer&gt;</c>
/// so PEFT methods can wrap a <see cref="Linear"/> (LoRA, DoRA, a quantized base, ...) by replacing the slot's module.
/// </summary>
public abstract class LinearLayer : Module
{
    /// <summary>Input features.</summary>
    public abstract int InFeatures { get; }

    /// <summary>Output features.</summary>
    public abstract int OutFeatures { get; }

    /// <summary>Applies the layer to [..., InFeatures].</summary>
    public abstract Tensor Forward(Tensor input);
}

/// <summary>y = x·Wᵀ + b, as torch.nn.Linear: weight [out, in], optional bias [out].</summary>
public class Linear : LinearLayer
{
    private readonly Parameter weight;
    private readonly Parameter? bias;

    /// <summary>
    /// A randomly initialised layer exactly as torch.nn.Linear.reset_parameters: weight ~ kaiming_uniform(a = √5),
    /// i.e. U(−1/√in, 1/√in), and bias ~ U(−1/√in, 1/√in), drawn from <paramref name="generator"/> (weight first).
    /// </summary>
    public Linear(int inFeatures, int outFeatures, Generator generator, bool hasBias = true)
    {
        ArgumentNullException.ThrowIfNull(generator);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        Tensor w, b;
        using (TensorScope.Untracked())
        {
            w = Tensor.Empty(outFeatures, inFeatures).KaimingUniform_(generator);
            float bound = 1f / MathF.Sqrt(inFeatures);
            b = hasBias ? Tensor.Empty(outFeatures).Uniform_(generator, -bound, bound) : null!;
        }
        weight = RegisterParameter("weight", w);
        if (hasBias) bias = RegisterParameter("bias", b);
    }

    /// <summary>A layer over existing tensors (e.g. loaded weights, possibly frozen bfloat16/float16).</summary>
    public Linear(Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (weight.Rank != 2) throw new ArgumentException($"Linear: weight {weight} must be [out_features, in_features]");
        if (bias is not null && (bias.Rank != 1 || bias.Size(0) != weight.Size(0)))
            throw new ArgumentException($"Linear: bias {bias} must be [{weight.Size(0)}]");
        this.weight = RegisterParameter("weight", weight);
        if (bias is not null) this.bias = RegisterParameter("bias", bias);
    }

    /// <summary>Weight [out, in].</summary>
    public Tensor Weight => weight.Value;

    /// <summary>Bias [out], or null.</summary>
    public Tensor? Bias => bias?.Value;

    /// <inheritdoc/>
    public override int InFeatures => weight.Value.Size(1);

    /// <inheritdoc/>
    public override int OutFeatures => weight.Value.Size(0);

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input) => input.Linear(Weight, Bias);
}
