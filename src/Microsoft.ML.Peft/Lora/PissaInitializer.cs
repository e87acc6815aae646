using Microsoft.ML.Peft.LinearAlgebra;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// PiSSA initialisation (Meng et al. 2024; PEFT's <c>pissa_init</c>): with W [out, in] = Σ σ_i u_i v_iᵀ,
/// A = diag(√(σ_{1..r}/s))·[v_1 … v_r]ᵀ [r, in] and B = [u_1 … u_r]·diag(√(σ_{1..r}/s)) [out, r], so that
/// s·B·A is the best rank-r approximation of W; the base weight becomes the frozen residual W_res = W − s·B·A.
/// The adapter therefore starts on the principal subspace while the layer's output is unchanged.
/// </summary>
internal static class PissaInitializer
{
    /// <summary>
    /// Fills <paramref name="a"/> [r, in] and <paramref name="b"/> [out, r] and replaces the base weight of
    /// <paramref name="layer"/> with the residual (same dtype as before). <paramref name="iterations"/> null: exact
    /// SVD; otherwise the randomized SVD with that many subspace iterations ("pissa_niter_K").
    /// </summary>
    public static void Initialize(LoraLinear layer, Tensor a, Tensor b, float scaling, int? iterations, Generator generator)
    {
        if (layer.Base is not Linear linear)
            throw new NotSupportedException($"PiSSA initialisation needs a Linear base layer; this layer wraps a {layer.Base.GetType().Name}");
        var weight = linear.Weight;
        int rows = weight.Size(0), cols = weight.Size(1), rank = a.Size(0);
        if (rank > Math.Min(rows, cols))
            throw new ArgumentException($"PiSSA: rank {rank} exceeds min(out, in) = {Math.Min(rows, cols)} of the base weight {weight}");
        if (scaling == 0) throw new ArgumentException("PiSSA: the adapter scaling is 0 (lora_alpha = 0); A and B would be infinite");

        var w = Array.ConvertAll(weight.To(DType.Float32).ToArray(), x => (double)x);
        string name = weight.Name ?? "base weight";
        // Exact: QR-preconditioned one-sided Jacobi. "pissa_niter_K": torch.svd_lowrank(W, q = r, niter = K), i.e. the
        // randomized range finder with K subspace iterations and no oversampling.
        var svd = iterations is { } k
            ? RandomizedSvd.Compute(w, rows, cols, rank, oversampling: 0, powerIterations: k, seed: (long)generator.NextUInt64(), matrixName: name)
            : SingularValueDecomposition.ComputeThin(w, rows, cols, name).Truncate(rank);
        var u = svd.U;          // rows × rank
        var sigma = svd.SingularValues;
        var vt = svd.Vt;        // rank × cols

        var aValues = new float[rank * cols];
        var bValues = new float[rows * rank];
        for (int i = 0; i < rank; i++)
        {
            // Sr /= scaling, then √: splitting √(σ/s) between A and B balances their norms, as PEFT does.
            double root = Math.Sqrt(sigma[i] / scaling);
            for (int c = 0; c < cols; c++) aValues[i * cols + c] = (float)(root * vt[i * cols + c]);
            for (int r = 0; r < rows; r++) bValues[r * rank + i] = (float)(root * u[r * rank + i]);
        }

        // The residual from the float32 A and B actually stored, so W_res + s·B·A reproduces W to float rounding.
        var residual = new float[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < cols; c++)
            {
                double sum = 0;
                for (int i = 0; i < rank; i++) sum += (double)bValues[r * rank + i] * aValues[i * cols + c];
                residual[r * cols + c] = (float)(w[r * cols + c] - scaling * sum);
            }
        }

        aValues.AsSpan().CopyTo(a.AsSpan<float>());
        bValues.AsSpan().CopyTo(b.AsSpan<float>());
        Tensor replacement;
        using (TensorScope.Untracked()) replacement = Tensor.From(residual, rows, cols).To(weight.DType);
        linear.ReplaceParameter("weight", replacement);
    }
}
