using System.Numerics.Tensors;
using Microsoft.ML.Peft.NN;
using Tensor = Microsoft.ML.Peft.Tensors.Tensor;
using TensorScope = Microsoft.ML.Peft.Tensors.TensorScope;
using DType = Microsoft.ML.Peft.Tensors.DType;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// OLoRA initialisation (Büyükakyüz 2024; PEFT's <c>olora_init</c>): with the reduced QR factorisation W = Q·R of
/// the base weight [out, in], A = R[:r] [r, in] and B = Q[:, :r] [out, r], and the base weight becomes the frozen
/// residual W − scaling·B·A, so the layer's output is unchanged at init while B starts orthonormal.
/// </summary>
/// <remarks>
/// PyTorch's <c>torch.linalg.qr</c> is LAPACK's Householder QR (geqrf/orgqr), whose signs are not normalised: each
/// reflector maps its column onto β·e₁ with β = −sign(α)·‖x‖ (α the column's leading entry, sign(0) = +), and a column
/// with nothing below the diagonal is left as it is. The factorisation here follows the same convention in double, so
/// A and B match PEFT's to float rounding rather than up to the sign of each rank-one pair.
/// </remarks>
internal static class OloraInitializer
{
    /// <summary>
    /// Fills <paramref name="a"/> [r, in] and <paramref name="b"/> [out, r] and replaces the base weight of
    /// <paramref name="layer"/> by the residual (same dtype as before).
    /// </summary>
    public static void Initialize(LoraLinear layer, Tensor a, Tensor b, float scaling)
    {
        if (layer.Base is not Linear linear)
            throw new NotSupportedException($"OLoRA initialisation needs a Linear base layer; this layer wraps a {layer.Base.GetType().Name}");
        var weight = linear.Weight;
        int rows = weight.Size(0), cols = weight.Size(1), rank = a.Size(0);
        if (rank > Math.Min(rows, cols))
            throw new ArgumentException($"OLoRA: rank {rank} exceeds min(out, in) = {Math.Min(rows, cols)} of the base weight {weight}; the QR factors have only that many columns");
        var w = Array.ConvertAll(weight.To(DType.Float32).ToArray(), x => (double)x);
        for (int i = 0; i < w.Length; i++)
        {
            if (!double.IsFinite(w[i]))
                throw new ArgumentException($"OLoRA: the base weight {weight.Name ?? "weight"} {weight} has a non-finite element at [{i / cols}, {i % cols}]");
        }

        var (q, r) = LeadingQr(w, rows, cols, rank);
        var aValues = Array.ConvertAll(r, x => (float)x);
        var bValues = Array.ConvertAll(q, x => (float)x);

        // The residual from the float32 A and B actually stored, so W_res + s·B·A reproduces W to float rounding.
        var residual = new float[rows * cols];
        for (int i = 0; i < rows; i++)
        {
            for (int c = 0; c < cols; c++)
            {
                double sum = 0;
                for (int k = 0; k < rank; k++) sum += (double)bValues[i * rank + k] * aValues[k * cols + c];
                residual[i * cols + c] = (float)(w[i * cols + c] - scaling * sum);
            }
        }

        aValues.AsSpan().CopyTo(a.AsSpan<float>());
        bValues.AsSpan().CopyTo(b.AsSpan<float>());
        Tensor replacement;
        using (TensorScope.Untracked()) replacement = Tensor.From(residual, rows, cols).To(weight.DType);
        linear.ReplaceParameter("weight", replacement);
    }

    /// <summary>
    /// Q[:, :r] (m×r) and R[:r, :] (r×n, upper trapezoidal) of the reduced Householder QR of the row-major m×n
    /// <paramref name="matrix"/>, with LAPACK's reflector signs.
    /// </summary>
    internal static (double[] Q, double[] R) LeadingQr(double[] matrix, int m, int n, int r)
    {
        int steps = Math.Min(m, n);
        // Column j of the matrix is row j of `columns`, so each reflector works on contiguous memory.
        var columns = new double[n * m];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++) columns[j * m + i] = matrix[i * n + j];
        }
        var tau = new double[steps];
        for (int k = 0; k < steps; k++)
        {
            Span<double> x = columns.AsSpan(k * m + k, m - k);
            double alpha = x[0];
            double below = TensorPrimitives.Norm((ReadOnlySpan<double>)x[1..]);
            if (below == 0) continue;   // LAPACK's dlarfg: nothing to annihilate, H = I (tau 0), R[k, k] = α
            double beta = (alpha >= 0 ? -1 : 1) * double.Hypot(alpha, below);
            tau[k] = (beta - alpha) / beta;
            // v = (1, x[1..] / (α − β)); stored below the diagonal in place of the annihilated entries.
            TensorPrimitives.Multiply(x[1..], 1 / (alpha - beta), x[1..]);
            x[0] = 1;
            for (int j = k + 1; j < n; j++)
            {
                Span<double> column = columns.AsSpan(j * m + k, m - k);
                TensorPrimitives.MultiplyAdd(x, -tau[k] * TensorPrimitives.Dot(column, x), column, column);
            }
            x[0] = beta;
        }

        var rFactor = new double[r * n];
        for (int i = 0; i < r; i++)
        {
            for (int j = i; j < n; j++) rFactor[i * n + j] = columns[j * m + i];
        }

        // Q·e_c = H₀·H₁·…·H_{K−1}·e_c, applied right to left (LAPACK's orgqr), for the first r unit vectors.
        var qFactor = new double[m * r];
        var y = new double[m];
        var v = new double[m];
        for (int c = 0; c < r; c++)
        {
            Array.Clear(y);
            y[c] = 1;
            for (int k = steps - 1; k >= 0; k--)
            {
                if (tau[k] == 0) continue;
                columns.AsSpan(k * m + k, m - k).CopyTo(v.AsSpan(k));
                v[k] = 1;
                Span<double> tail = y.AsSpan(k);
                ReadOnlySpan<double> vk = v.AsSpan(k, m - k);
                TensorPrimitives.MultiplyAdd(vk, -tau[k] * TensorPrimitives.Dot(tail, vk), tail, tail);
            }
            for (int i = 0; i < m; i++) qFactor[i * r + c] = y[i];
        }
        return (qFactor, rFactor);
    }
}
