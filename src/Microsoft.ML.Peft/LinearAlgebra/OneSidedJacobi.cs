using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// One-sided (Hestenes) Jacobi SVD of a square matrix X: rotates pairs of columns until all are mutually orthogonal,
/// X·V = W; then σ_j = ‖w_j‖ and u_j = w_j / σ_j.
/// </summary>
/// <remarks>
/// Each rotation is chosen from the 2×2 Gram block [[α, γ], [γ, β]] of a column pair to zero γ exactly; sweeps
/// repeat until every pair satisfies |γ| ≤ ε·√(αβ). That relative test is what gives one-sided Jacobi its high
/// relative accuracy (small singular values are found to nearly full precision, unlike methods that square the
/// condition number). Columns and V's columns are stored as rows so rotations run over contiguous memory.
/// </remarks>
internal static class OneSidedJacobi
{
    private const int MaxSweeps = 80;

    /// <summary>Orthogonalises the rows of <paramref name="columnsAsRows"/> (n rows of length n) in place and accumulates the rotations in <paramref name="vRows"/> (rows = columns of V, starts as I).</summary>
    public static void Orthogonalize(double[] columnsAsRows, double[] vRows, int n, string matrixName)
    {
        // √n·ε as in LAPACK's dgesvj: a dot product of length n carries about √n units of roundoff, so a
        // tighter test could keep rotating on noise.
        double tolerance = Math.Max(4, Math.Sqrt(n)) * 2.220446049250313e-16;
        for (int sweep = 0; sweep < MaxSweeps; sweep++)
        {
            bool rotated = false;
            for (int p = 0; p < n - 1; p++)
            {
                Span<double> wp = columnsAsRows.AsSpan(p * n, n);
                for (int q = p + 1; q < n; q++)
                {
                    Span<double> wq = columnsAsRows.AsSpan(q * n, n);
                    double alpha = TensorPrimitives.Dot<double>(wp, wp);
                    double beta = TensorPrimitives.Dot<double>(wq, wq);
                    double gamma = TensorPrimitives.Dot<double>(wp, wq);
                    if (alpha == 0 || beta == 0 || Math.Abs(gamma) <= tolerance * Math.Sqrt(alpha) * Math.Sqrt(beta)) continue;
                    double zeta = (beta - alpha) / (2 * gamma);
                    double t = (zeta >= 0 ? 1 : -1) / (Math.Abs(zeta) + Math.Sqrt(1 + zeta * zeta));
                    if (t == 0) continue; // γ negligible beyond double range of ζ²
                    rotated = true;
                    double c = 1 / Math.Sqrt(1 + t * t);
                    double s = c * t;
                    PlaneRotation.Apply(wp, wq, c, s);
                    PlaneRotation.Apply(vRows.AsSpan(p * n, n), vRows.AsSpan(q * n, n), c, s);
                }
            }
            if (!rotated) return;
        }
        throw new InvalidOperationException($"Jacobi SVD of '{matrixName}' did not converge in {MaxSweeps} sweeps.");
    }
}
