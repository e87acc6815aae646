using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Optim;

/// <summary>Gradient clipping as torch.nn.utils.clip_grad_norm_.</summary>
public static class GradientClipping
{
    /// <summary>
    /// Scales every gradient by min(1, maxNorm/(‖g‖ + 1e-6)) where ‖g‖ is the L2 norm of all gradients together
    /// (accumulated in double), and returns ‖g‖ before clipping. Parameters without a gradient are ignored.
    /// </summary>
    public static double ClipGradNorm(IEnumerable<Tensor> parameters, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var withGradients = parameters.Where(p => p.Grad is not null).ToList();
        double total = GlobalNorm(withGradients);
        var grads = withGradients.Select(p => p.Grad!);
        float coefficient = (float)Math.Min(1.0, maxNorm / (total + 1e-6));
        if (coefficient < 1f)
        {
            foreach (var g in grads)
            {
                var span = g.AsSpan<float>();
                System.Numerics.Tensors.TensorPrimitives.Multiply(span, coefficient, span);
            }
        }
        return total;
    }

    /// <summary>
    /// The L2 norm of all gradients of <paramref name="parameters"/> together, squares summed in double in parameter
    /// order (parameters without a gradient are skipped); the norm <see cref="ClipGradNorm"/> clips by.
    /// </summary>
    public static double GlobalNorm(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        double sumSquares = 0;
        foreach (var p in parameters)
        {
            if (p.Grad is not { } g) continue;
            foreach (float v in g.AsReadOnlySpan<float>()) sumSquares += (double)v * v;
        }
        return Math.Sqrt(sumSquares);
    }
}
