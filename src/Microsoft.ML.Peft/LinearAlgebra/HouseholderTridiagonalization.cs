using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Reduces a symmetric matrix to tridiagonal form T = Qᵀ·A·Q with n − 2 Householder reflections, returning the
/// diagonal, the sub-diagonal and Qᵀ (row-major, so its rows are the columns of Q).
/// </summary>
/// <remarks>
/// Step k reflects x = A[k+1:, k] onto α·e₁ with H = I − w·wᵀ (‖w‖² = 2) and updates the trailing block
/// symmetrically, B ← H·B·H = B − w·qᵀ − q·wᵀ with p = B·w and q = p − ½(wᵀp)·w: one matrix-vector product (row
/// dot products) and one rank-2 update (row axpys), all on contiguous rows. Qᵀ = H_{n−3}···H₀ is then accumulated
/// right-to-left so each step only touches the trailing block it changes. Returning Qᵀ rather than Q lets the QL
/// iteration rotate contiguous rows.
/// </remarks>
internal static class HouseholderTridiagonalization
{
    /// <param name="a">Symmetric n×n matrix, overwritten (used as workspace).</param>
    /// <param name="n">Order.</param>
    /// <param name="diagonal">Receives T's diagonal (length n).</param>
    /// <param name="subDiagonal">Receives T[i+1, i] at index i (length n, last entry 0).</param>
    /// <returns>Qᵀ, n×n row-major.</returns>
    public static double[] Reduce(double[] a, int n, double[] diagonal, double[] subDiagonal)
    {
        var reflectors = new double[n * n]; // reflector k lives in row k, columns k+1..n-1
        var p = new double[n];
        for (int k = 0; k < n - 2; k++)
        {
            int m = n - k - 1;
            // The column below the diagonal equals the row right of it (symmetry), which is contiguous.
            Span<double> x = a.AsSpan(k * n + k + 1, m);
            double tailNorm = TensorPrimitives.Norm(x[1..]);
            double x0 = x[0];
            diagonal[k] = a[k * n + k];
            Span<double> w = reflectors.AsSpan(k * n + k + 1, m);
            if (tailNorm == 0)
            {
                subDiagonal[k] = x0; // already tridiagonal in this column: H = I
                continue;
            }
            double norm = Math.Sqrt(x0 * x0 + tailNorm * tailNorm);
            double alpha = x0 > 0 ? -norm : norm; // sign chosen so x0 − α never cancels
            subDiagonal[k] = alpha;
            x.CopyTo(w);
            w[0] -= alpha;
            TensorPrimitives.Multiply(w, Math.Sqrt(2) / TensorPrimitives.Norm(w), w);

            // p = B·w over the trailing block B = A[k+1:, k+1:].
            Span<double> pk = p.AsSpan(0, m);
            for (int i = 0; i < m; i++) pk[i] = TensorPrimitives.Dot(a.AsSpan((k + 1 + i) * n + k + 1, m), w);
            double half = 0.5 * TensorPrimitives.Dot(w, pk);
            TensorPrimitives.MultiplyAdd(w, -half, pk, pk); // q
            for (int i = 0; i < m; i++)
            {
                Span<double> row = a.AsSpan((k + 1 + i) * n + k + 1, m);
                TensorPrimitives.MultiplyAdd(pk, -w[i], row, row);
                TensorPrimitives.MultiplyAdd(w, -pk[i], row, row);
            }
        }
        if (n >= 2)
        {
            diagonal[n - 2] = a[(n - 2) * n + n - 2];
            subDiagonal[n - 2] = a[(n - 1) * n + n - 2];
        }
        if (n >= 1)
        {
            diagonal[n - 1] = a[(n - 1) * n + n - 1];
            subDiagonal[n - 1] = 0;
        }

        // Qᵀ = H_{n−3}·…·H₀ built as I·H_{n−3}·…·H₀ (right multiplications), so step k touches only rows and
        // columns > k: row ← row − (row·w)·wᵀ.
        var qt = DenseMatrix.Identity(n);
        for (int k = n - 3; k >= 0; k--)
        {
            int m = n - k - 1;
            ReadOnlySpan<double> w = reflectors.AsSpan(k * n + k + 1, m);
            if (TensorPrimitives.Norm(w) == 0) continue;
            for (int i = k + 1; i < n; i++)
            {
                Span<double> row = qt.AsSpan(i * n + k + 1, m);
                TensorPrimitives.MultiplyAdd(w, -TensorPrimitives.Dot(row, w), row, row);
            }
        }
        return qt;
    }
}
