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
        var grads = parameters.Select(p => p.Grad).Where(g => g is not null).Select(g => g!).ToList();
        double total = Norm(grads);
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
    /// ‖g‖, the L2 norm of all gradients together (accumulated in double, as <see cref="ClipGradNorm"/> measures it),
    /// without changing them: what a trainer without clipping still needs for its divergence check and its log.
    /// </summary>
    public static double GradientNorm(IEnumerable<Tensor> parameters)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        return Norm(parameters.Select(p => p.Grad).Where(g => g is not null).Select(g => g!));
    }

    private static double Norm(IEnumerable<Tensor> grads)
    {
        double sumSquares = 0;
        foreach (var g in grads)
        {
            foreach (float v in g.AsReadOnlySpan<float>()) sumSquares += (double)v * v;
        }
        return Math.Sqrt(sumSquares);
    }
}
