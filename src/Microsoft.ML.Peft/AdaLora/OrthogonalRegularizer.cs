using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.AdaLora;

/// <summary>
/// AdaLoRA's orthogonality regulariser (Zhang et al. 2023, Eq. 4; PEFT's AdaLoraModel.forward):
/// R = (1/n) Σ over the n = 2·layers matrices ‖A·Aᵀ − I‖_F (A [r, in], rows of Q) and ‖Bᵀ·B − I‖_F (B [out, r],
/// columns of P). It keeps P and Q near-orthogonal so that E holds singular values. Recorded for autograd; the caller
/// multiplies by orth_reg_weight.
/// </summary>
internal static class OrthogonalRegularizer
{
    public static Tensor Compute(IEnumerable<AdaLoraLinear> layers, string adapterName)
    {
        Tensor? sum = null;
        int count = 0;
        foreach (var layer in layers)
        {
            var a = layer.LoraA(adapterName);
            var b = layer.LoraB(adapterName);
            foreach (var gram in new[] { a.MatMul(a.Transpose(0, 1)), b.Transpose(0, 1).MatMul(b) })
            {
                var distance = FrobeniusDistanceToIdentity(gram);
                sum = sum is null ? distance : sum.Add(distance);
                count++;
            }
        }
        return sum is null ? Tensor.Scalar(0f) : sum.Div(count);
    }

    /// <summary>‖G − I‖_F for a square G.</summary>
    private static Tensor FrobeniusDistanceToIdentity(Tensor gram)
    {
        int n = gram.Size(0);
        var identity = Tensor.Zeros(n, n);
        using (Autograd.NoGrad())
        {
            var values = identity.AsSpan<float>();
            for (int i = 0; i < n; i++) values[i * n + i] = 1f;
        }
        var diff = gram.Sub(identity);
        return diff.Mul(diff).Sum().Sqrt();
    }
}
