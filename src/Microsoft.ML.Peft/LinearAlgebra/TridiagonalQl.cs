using System.Runtime.CompilerServices;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Eigenvalues and eigenvectors of a symmetric tridiagonal matrix by the implicit QL algorithm with Wilkinson shifts.
/// </summary>
/// <remarks>
/// For each leading index l the iteration chases a bulge from the bottom of the unreduced block [l, m] up to l with
/// Givens rotations until the coupling e[l] is negligible against its neighbours' diagonal entries (a relative test,
/// so small eigenvalues keep full relative accuracy as far as the reduction allows). Every rotation is also applied to
/// the eigenvector basis, which is stored as rows (<c>vectorRows</c>) so that a rotation is a contiguous two-row
/// update (<see cref="PlaneRotation"/>). Convergence is cubic; 60 sweeps per eigenvalue is far above what is needed.
/// </remarks>
internal static class TridiagonalQl
{
    private const int MaxIterationsPerEigenvalue = 60;

    /// <param name="d">Diagonal (length n), replaced by the eigenvalues (unsorted).</param>
    /// <param name="e">Sub-diagonal, e[i] couples i and i+1 (length n; destroyed).</param>
    /// <param name="vectorRows">n×n basis whose rows are rotated along (start from Qᵀ of the reduction).</param>
    /// <param name="n">Order.</param>
    /// <param name="matrixName">Name for the non-convergence error.</param>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Solve(double[] d, double[] e, double[] vectorRows, int n, string matrixName)
    {
        for (int l = 0; l < n; l++)
        {
            int iterations = 0;
            while (true)
            {
                int m = l;
                for (; m < n - 1; m++)
                {
                    double scale = Math.Abs(d[m]) + Math.Abs(d[m + 1]);
                    if (Math.Abs(e[m]) <= double.Epsilon || Math.Abs(e[m]) + scale == scale) break;
                }
                if (m == l) break;
                if (++iterations > MaxIterationsPerEigenvalue)
                    throw new InvalidOperationException($"Symmetric eigendecomposition of '{matrixName}' did not converge (eigenvalue {l}).");

                // Wilkinson shift from the leading 2×2 block, folded into the first rotation's g.
                double g = (d[l + 1] - d[l]) / (2 * e[l]);
                double r = Hypot(g, 1);
                g = d[m] - d[l] + e[l] / (g + (g >= 0 ? r : -r));
                double s = 1, c = 1, p = 0;
                int i = m - 1;
                bool underflow = false;
                for (; i >= l; i--)
                {
                    double f = s * e[i], b = c * e[i];
                    r = Hypot(f, g);
                    e[i + 1] = r;
                    if (r == 0)
                    {
                        // The rotation would divide by zero: the block has split; deflate and restart.
                        d[i + 1] -= p;
                        e[m] = 0;
                        underflow = true;
                        break;
                    }
                    s = f / r;
                    c = g / r;
                    g = d[i + 1] - p;
                    r = (d[i] - g) * s + 2 * c * b;
                    p = s * r;
                    d[i + 1] = g + p;
                    g = c * r - b;
                    PlaneRotation.Apply(vectorRows.AsSpan(i * n, n), vectorRows.AsSpan((i + 1) * n, n), c, s);
                }
                if (underflow) continue;
                d[l] -= p;
                e[l] = g;
                e[m] = 0;
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static double Hypot(double a, double b)
    {
        a = Math.Abs(a);
        b = Math.Abs(b);
        if (a < b) (a, b) = (b, a);
        if (a == 0) return 0;
        double ratio = b / a;
        return a * Math.Sqrt(1 + ratio * ratio);
    }
}
