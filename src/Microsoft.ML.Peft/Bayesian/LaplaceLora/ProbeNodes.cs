using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>Pieces shared by the probe nodes (<see cref="ProbedLoraLayer"/>'s LoRA branch, <see cref="ProbedMatrix.Apply"/>).</summary>
internal static class ProbeNodes
{
    /// <summary>
    /// A one-element leaf that requires grad, given to every probe node as an extra input. Why: while probing every
    /// parameter is frozen, so the first probed layer's input is not part of the graph, and an op is only recorded when
    /// one of its inputs requires grad. The anchor never receives a gradient (no probe node writes one), and it lives
    /// outside every tensor scope, so one serves all passes.
    /// </summary>
    public static Tensor Anchor { get; } = CreateAnchor();

    private static Tensor CreateAnchor()
    {
        Tensor anchor;
        using (TensorScope.Untracked()) anchor = Tensor.Zeros(1);
        anchor.RequiresGrad = true;
        return anchor;
    }

    /// <summary>
    /// g·W for g [..., out] and W [out, in] → [..., in]: the rows of g folded into ONE GEMM (g viewed as [1, rows, out]
    /// takes MatMul's folded path), the same kernel call Linear's backward makes for its input gradient, so the gradients
    /// passed on equal a plain Linear's.
    /// </summary>
    public static Tensor RowProduct(Tensor g, Tensor weight)
    {
        if (!g.IsContiguous) g = g.Contiguous();   // e.g. a sum's gradient, expanded with zero strides (as Linear's backward does)
        int outFeatures = weight.Size(0);
        var shape = g.ShapeArray();
        shape[^1] = weight.Size(1);
        return g.Reshape(1, g.Count / outFeatures, outFeatures).MatMul(weight).Reshape(shape);
    }
}
