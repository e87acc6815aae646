using Microsoft.ML.Peft.Kernels;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Quantization;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.QLora;

/// <summary>
/// A frozen linear layer whose weight W [out, in] is stored in 4 bits (bitsandbytes' <c>Linear4bit</c>):
/// y = x·Wᵀ + b, computed by the packed SGEMM with W dequantized panel by panel (<see cref="QuantizedBOperand"/>),
/// never as a whole fp32 matrix. The weight never gets a gradient; the input does (dX = dY·W, through the same fused
/// kernel), so LoRA adapters wrapped around this layer train as usual.
/// </summary>
/// <remarks>
/// The quantized weight is not a <see cref="Parameter"/> (the engine's tensors hold float32/bfloat16/float16); save it
/// with <see cref="BitsAndBytes4BitStateDict"/>. The bias, when present, is a registered parameter (float32 or
/// bfloat16), frozen on construction like the weight; a float32 bias may be unfrozen and then receives a gradient.
/// </remarks>
public sealed class QuantizedLinear : LinearLayer
{
    private readonly Parameter? bias;
    private readonly QuantizedBOperand forwardOperand;
    private readonly QuantizedBOperand inputGradientOperand;

    /// <summary>A layer over an already quantized weight.</summary>
    /// <param name="weight">The 4-bit weight, shape [out, in].</param>
    /// <param name="bias">Optional bias [out], float32 or bfloat16.</param>
    /// <exception cref="ArgumentException">The weight is not 2-D, or the bias has the wrong shape or dtype.</exception>
    public QuantizedLinear(QuantizedTensor4Bit weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        forwardOperand = new QuantizedBOperand(weight, transposed: true);
        inputGradientOperand = new QuantizedBOperand(weight, transposed: false);
        Weight = weight;
        if (bias is not null)
        {
            if (bias.Rank != 1 || bias.Size(0) != weight.Rows)
                throw new ArgumentException($"QuantizedLinear: bias {bias} must be [{weight.Rows}] to match the weight [{weight.Rows}, {weight.Columns}].", nameof(bias));
            if (bias.DType is not (DType.Float32 or DType.BFloat16))
                throw new ArgumentException($"QuantizedLinear: bias {bias} must be float32 or bfloat16.", nameof(bias));
            this.bias = RegisterParameter("bias", bias);
            this.bias.Value.RequiresGrad = false;
        }
    }

    /// <summary>The 4-bit weight [out, in].</summary>
    public QuantizedTensor4Bit Weight { get; }

    /// <summary>The bias [out], or null.</summary>
    public Tensor? Bias => bias?.Value;

    /// <inheritdoc/>
    public override int InFeatures => Weight.Columns;

    /// <inheritdoc/>
    public override int OutFeatures => Weight.Rows;

    /// <inheritdoc/>
    public override long PackedWeightCount => (long)Weight.Rows * Weight.Columns;

    /// <summary>
    /// Quantizes a float32 <see cref="Linear"/> (bitsandbytes' <c>Linear4bit</c> conversion). The bias is copied,
    /// optionally rounded to bfloat16.
    /// </summary>
    /// <param name="linear">The layer; its weight must be float32.</param>
    /// <param name="options">Code book, block size, double quantization, bias storage; defaults are QLoRA's.</param>
    public static QuantizedLinear FromLinear(Linear linear, QuantizationOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(linear);
        options ??= new QuantizationOptions();
        var w = linear.Weight;
        if (w.DType != DType.Float32)
            throw new ArgumentException($"QuantizedLinear.FromLinear: weight {w} is {DTypeInfo.Name(w.DType)}; convert it to float32 first.", nameof(linear));
        var values = w.IsContiguous ? w.AsReadOnlySpan<float>() : w.ToArray();
        var q = QuantizedTensor4Bit.Quantize(values, [w.Size(0), w.Size(1)], options.Type, options.BlockSize, options.DoubleQuant);
        Tensor? b = null;
        if (linear.Bias is { } bias)
        {
            using (TensorScope.Untracked())
            using (Autograd.NoGrad())
                b = options.BiasInBFloat16 ? bias.To(DType.BFloat16) : bias.Detach().Clone();
        }
        return new QuantizedLinear(q, b);
    }

    /// <summary>A float32 <see cref="Linear"/> holding the dequantized weight and a float32 copy of the bias (for merging).</summary>
    public Linear Dequantize()
    {
        Tensor w, b;
        using (TensorScope.Untracked())
        using (Autograd.NoGrad())
        {
            w = Tensor.From(Weight.Dequantize(), Weight.Rows, Weight.Columns);
            b = Bias is null ? null! : Bias.To(DType.Float32).Clone();
        }
        return new Linear(w, Bias is null ? null : b);
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        const string op = "quantized_linear";
        input.RequireFloat32(op);
        int inF = InFeatures, outF = OutFeatures;
        if (input.Rank < 1 || input.Size(-1) != inF)
            throw new ArgumentException($"{op}: input {input} does not end in in_features = {inF} of the 4-bit weight [{outF}, {inF}]");
        var biasValue = Bias;
        // Inside a checkpoint that keeps this layer's output, the recompute takes the first forward's product back
        // instead of running the GEMM again (Checkpointing, selective recompute).
        var y = Checkpointing.KeptOutput(this) ?? Product(input, biasValue);
        Checkpointing.OfferOutput(this, y);
        bool biasTrains = biasValue is { RequiresGrad: true };
        if (Autograd.ShouldRecord(input, biasTrains ? biasValue : null))
        {
            Tensor[] inputs = biasTrains ? [input, biasValue!] : [input];
            var gradOperand = inputGradientOperand;
            Autograd.Record(op, y, inputs, (node, g) => Backward(node, g, gradOperand, inF, outF));
        }
        return Autograd.Checked(y, input);
    }

    /// <summary>y = x·Wᵀ (+ bias) through the fused kernel, as a fresh tensor.</summary>
    private Tensor Product(Tensor input, Tensor? biasValue)
    {
        int inF = InFeatures, outF = OutFeatures;
        var x = input.IsContiguous ? input : input.ContiguousCopy();
        int rows = x.Count / inF;
        var outShape = input.ShapeArray();
        outShape[^1] = outF;
        var y = Tensor.NewOutput(outShape, "quantized_linear");
        float beta = 0f;
        if (biasValue is not null && rows > 0)
        {
            // The bias initialises every output row; the GEMM then accumulates onto it (beta = 1).
            var b = biasValue.DType == DType.Float32 && biasValue.IsContiguous ? biasValue : biasValue.To(DType.Float32).ContiguousCopy();
            var bs = b.AsReadOnlySpan<float>();
            var ys = y.Span;
            for (int r = 0; r < rows; r++) bs.CopyTo(ys.Slice(r * outF, outF));
            beta = 1f;
        }
        if (rows > 0) Gemm.Sgemm(false, rows, 1f, x.Span, inF, forwardOperand, beta, y.Span, outF);
        return y;
    }

    /// <summary>dX = dY·W through the fused kernel; dB = Σ rows of dY; W gets nothing (it is frozen).</summary>
    private static unsafe void Backward(Node node, Tensor g, QuantizedBOperand w, int inF, int outF)
    {
        var g2 = g.IsContiguous ? g : g.ContiguousCopy();
        int rows = g2.Count / outF;
        if (node.NeedsGrad(0))
        {
            var dx = Tensor.NewOutput(node.Inputs[0].ShapeArray(), "quantized_linear_backward");
            if (rows > 0) Gemm.Sgemm(false, rows, 1f, g2.Span, outF, w, 0f, dx.Span, inF);
            node.AccumulateGrad(0, dx);
        }
        if (node.Inputs.Count > 1 && node.NeedsGrad(1))
        {
            var db = Tensor.NewOutput([outF], "quantized_linear_backward");
            ReductionKernels.Sum(g2.Ptr, db.Ptr, 1, rows, outF);
            node.AccumulateGrad(1, db);
        }
    }
}
