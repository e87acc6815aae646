using System.Numerics.Tensors;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Lora;

/// <summary>
/// The top-k singular triplets of a dense row-major matrix A [rows, cols] in double precision, for PiSSA:
/// A ≈ Σ_{i&lt;k} σ_i u_i v_iᵀ with σ descending. Vectors are returned as rows of <c>k × rows</c> (U) and
/// <c>k × cols</c> (V) arrays so every vector is contiguous.
/// </summary>
/// <remarks>
/// <para><see cref="Exact"/> is one-sided Jacobi (Hestenes): plane rotations orthogonalise the columns of the side
/// with fewer columns until every pair is orthogonal to working precision; singular values are the column norms.
/// It is accurate to ~1e-15 relative for every singular value, and costs about 10·m·n² flops per sweep (6–10 sweeps),
/// so it suits the small and medium layers it is used for here.</para>
/// <para><see cref="Randomized"/> is the Halko–Martinsson–Tropp range finder with <c>niter</c> subspace iterations,
/// as torch.svd_lowrank (which PEFT's "pissa_niter_K" calls): Q = orth(A·Ω) with Ω Gaussian [cols, k], then
/// niter times Q = orth(A·orth(Aᵀ·Q)); finally the exact SVD of the small k × cols matrix Qᵀ·A.</para>
/// <para>Both work on plain arrays and spans (TensorPrimitives dot products); nothing here depends on the tensor
/// engine except the seeded <see cref="Generator"/> for Ω.</para>
/// </remarks>
internal static class TruncatedSvd
{
    private const int MaxSweeps = 80;
    private const double MachineEpsilon = 2.220446049250313e-16;

    /// <summary>Exact top-k triplets by one-sided Jacobi.</summary>
    public static (double[] U, double[] S, double[] V) Exact(ReadOnlySpan<double> a, int rows, int cols, int k)
    {
        CheckArguments(a.Length, rows, cols, k);
        if (cols <= rows)
        {
            // Orthogonalise the columns of A: store them as rows (transpose copy).
            var g = new double[cols * rows];
            for (int i = 0; i < rows; i++)
            {
                for (int j = 0; j < cols; j++) g[j * rows + i] = a[i * cols + j];
            }
            var (left, s, right) = JacobiColumns(g, cols, rows);
            return (Take(left, rows, k), s[..k], Take(right, cols, k));
        }
        else
        {
            // Aᵀ has `rows` columns, which are the rows of A (already contiguous); Aᵀ = U'ΣV'ᵀ gives A = V'ΣU'ᵀ.
            var (left, s, right) = JacobiColumns(a.ToArray(), rows, cols);
            return (Take(right, rows, k), s[..k], Take(left, cols, k));
        }
    }

    /// <summary>Approximate top-k triplets by the randomized range finder with <paramref name="iterations"/> power steps.</summary>
    public static (double[] U, double[] S, double[] V) Randomized(ReadOnlySpan<double> a, int rows, int cols, int k, int iterations, Generator generator)
    {
        CheckArguments(a.Length, rows, cols, k);
        ArgumentOutOfRangeException.ThrowIfNegative(iterations);
        var omega = new float[k * cols];
        generator.FillNormal(omega);
        var omegaT = Array.ConvertAll(omega, x => (double)x); // k × cols: row j is the j-th random direction

        var q = MultiplyRows(a, rows, cols, omegaT, k);       // k × rows: q_j = A·ω_j
        Orthonormalize(q, k, rows);
        for (int it = 0; it < iterations; it++)
        {
            var z = MultiplyTransposed(a, rows, cols, q, k);  // k × cols: z_j = Aᵀ·q_j
            Orthonormalize(z, k, cols);
            q = MultiplyRows(a, rows, cols, z, k);
            Orthonormalize(q, k, rows);
        }

        var b = MultiplyTransposed(a, rows, cols, q, k);      // k × cols: row j of Qᵀ·A
        // Exact SVD of the small matrix B [k, cols]: B = U_b Σ V_bᵀ, then U = Q·U_b.
        var (ub, s, vb) = Exact(b, k, cols, k);
        var u = new double[k * rows];
        for (int l = 0; l < k; l++)
        {
            var target = u.AsSpan(l * rows, rows);
            for (int j = 0; j < k; j++) Axpy(ub[l * k + j], q.AsSpan(j * rows, rows), target);
        }
        return (u, s, vb);
    }

    /// <summary>
    /// One-sided Jacobi on n columns of length m stored as rows of <paramref name="g"/> (n × m, overwritten).
    /// Returns left vectors (n × m, unit rows), singular values descending, and right vectors (n × n, rows).
    /// </summary>
    private static (double[] Left, double[] S, double[] Right) JacobiColumns(double[] g, int n, int m)
    {
        var v = new double[n * n];
        for (int i = 0; i < n; i++) v[i * n + i] = 1;
        var norms = new double[n];
        for (int j = 0; j < n; j++) norms[j] = TensorPrimitives.Dot<double>(g.AsSpan(j * m, m), g.AsSpan(j * m, m));

        // Pairs count as orthogonal once their cosine is at the level of rounding noise for length-m dot products.
        double tolerance = Math.Max(1e-15, m * MachineEpsilon);
        for (int sweep = 0; sweep < MaxSweeps; sweep++)
        {
            bool rotated = false;
            for (int p = 0; p < n - 1; p++)
            {
                for (int q = p + 1; q < n; q++)
                {
                    var gp = g.AsSpan(p * m, m);
                    var gq = g.AsSpan(q * m, m);
                    double alpha = norms[p], beta = norms[q];
                    double gamma = TensorPrimitives.Dot<double>(gp, gq);
                    if (alpha == 0 || beta == 0 || Math.Abs(gamma) <= tolerance * Math.Sqrt(alpha * beta)) continue;
                    rotated = true;
                    // The rotation that zeroes the (p, q) entry of GᵀG (Rutishauser's stable form).
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = Math.Sign(zeta) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    if (zeta == 0) t = 1;
                    double c = 1 / Math.Sqrt(1 + t * t), s = c * t;
                    Rotate(gp, gq, c, s);
                    Rotate(v.AsSpan(p * n, n), v.AsSpan(q * n, n), c, s);
                    norms[p] = TensorPrimitives.Dot<double>(gp, gp);
                    norms[q] = TensorPrimitives.Dot<double>(gq, gq);
                }
            }
            if (!rotated) break;
        }

        var order = Enumerable.Range(0, n).OrderByDescending(j => norms[j]).ToArray();
        var left = new double[n * m];
        var right = new double[n * n];
        var sigma = new double[n];
        for (int r = 0; r < n; r++)
        {
            int j = order[r];
            sigma[r] = Math.Sqrt(norms[j]);
            var src = g.AsSpan(j * m, m);
            var dst = left.AsSpan(r * m, m);
            if (sigma[r] > 0) TensorPrimitives.Divide(src, sigma[r], dst);
            v.AsSpan(j * n, n).CopyTo(right.AsSpan(r * n, n));
        }
        return (left, sigma, right);
    }

    /// <summary>x ← c·x − s·y, y ← s·x + c·y.</summary>
    private static void Rotate(Span<double> x, Span<double> y, double c, double s)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double xi = x[i], yi = y[i];
            x[i] = c * xi - s * yi;
            y[i] = s * xi + c * yi;
        }
    }

    /// <summary>Rows j of the result = A·w_j for the k rows w_j of <paramref name="w"/> (k × cols) → k × rows.</summary>
    private static double[] MultiplyRows(ReadOnlySpan<double> a, int rows, int cols, double[] w, int k)
    {
        var result = new double[k * rows];
        for (int i = 0; i < rows; i++)
        {
            var row = a.Slice(i * cols, cols);
            for (int j = 0; j < k; j++) result[j * rows + i] = TensorPrimitives.Dot(row, w.AsSpan(j * cols, cols));
        }
        return result;
    }

    /// <summary>Rows j of the result = Aᵀ·q_j for the k rows q_j of <paramref name="q"/> (k × rows) → k × cols.</summary>
    private static double[] MultiplyTransposed(ReadOnlySpan<double> a, int rows, int cols, double[] q, int k)
    {
        var result = new double[k * cols];
        for (int j = 0; j < k; j++)
        {
            var target = result.AsSpan(j * cols, cols);
            for (int i = 0; i < rows; i++) Axpy(q[j * rows + i], a.Slice(i * cols, cols), target);
        }
        return result;
    }

    /// <summary>Modified Gram–Schmidt, applied twice for orthogonality to working precision; a dependent vector becomes zero.</summary>
    private static void Orthonormalize(double[] vectors, int k, int length)
    {
        for (int j = 0; j < k; j++)
        {
            var vj = vectors.AsSpan(j * length, length);
            double before = Math.Sqrt(TensorPrimitives.Dot<double>(vj, vj));
            for (int pass = 0; pass < 2; pass++)
            {
                for (int i = 0; i < j; i++)
                {
                    var vi = vectors.AsSpan(i * length, length);
                    Axpy(-TensorPrimitives.Dot<double>(vi, vj), vi, vj);
                }
            }
            double norm = Math.Sqrt(TensorPrimitives.Dot<double>(vj, vj));
            if (norm <= 1e-13 * Math.Max(before, double.Epsilon)) vj.Clear();
            else TensorPrimitives.Divide(vj, norm, vj);
        }
    }

    /// <summary>y ← y + alpha·x.</summary>
    private static void Axpy(double alpha, ReadOnlySpan<double> x, Span<double> y) => TensorPrimitives.MultiplyAdd(x, alpha, y, y);

    private static double[] Take(double[] rowsOfVectors, int length, int k) => rowsOfVectors[..(k * length)];

    private static void CheckArguments(int length, int rows, int cols, int k)
    {
        if (rows <= 0 || cols <= 0 || length != rows * cols)
            throw new ArgumentException($"matrix of {length} values is not [{rows}, {cols}]");
        if (k <= 0 || k > Math.Min(rows, cols))
            throw new ArgumentOutOfRangeException(nameof(k), $"cannot take {k} singular triplets of a [{rows}, {cols}] matrix (at most {Math.Min(rows, cols)})");
    }
}
