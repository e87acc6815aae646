using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// In-place triangular solves with n×n row-major triangular matrices and an n×c right-hand side B (row-major), by
/// row substitution: row i of X is B's row minus a combination of the already-solved rows, so the inner loop is a
/// contiguous axpy over the c right-hand-side columns.
/// </summary>
public static class TriangularSolve
{
    /// <summary>Solves L·X = B for lower-triangular L; B (n×rhsColumns) is overwritten with X. Only L's lower triangle is read.</summary>
    /// <exception cref="ArgumentException">Shapes disagree or a diagonal entry is zero (the matrix is singular).</exception>
    public static void SolveLower(ReadOnlySpan<double> lower, int n, Span<double> rhs, int rhsColumns = 1)
    {
        Check(lower, n, rhs, rhsColumns, nameof(lower));
        int c = rhsColumns;
        for (int i = 0; i < n; i++)
        {
            Span<double> xi = rhs.Slice(i * c, c);
            for (int k = 0; k < i; k++)
            {
                double lik = lower[i * n + k];
                if (lik != 0) TensorPrimitives.MultiplyAdd(rhs.Slice(k * c, c), -lik, xi, xi);
            }
            TensorPrimitives.Divide(xi, lower[i * n + i], xi);
        }
    }

    /// <summary>Solves Lᵀ·X = B for lower-triangular L (a back substitution reading L by columns); B is overwritten with X.</summary>
    public static void SolveLowerTransposed(ReadOnlySpan<double> lower, int n, Span<double> rhs, int rhsColumns = 1)
    {
        Check(lower, n, rhs, rhsColumns, nameof(lower));
        int c = rhsColumns;
        for (int i = n - 1; i >= 0; i--)
        {
            Span<double> xi = rhs.Slice(i * c, c);
            TensorPrimitives.Divide(xi, lower[i * n + i], xi);
            // Row i is final: remove its contribution from the rows above (Lᵀ[k, i] = L[i, k]).
            for (int k = 0; k < i; k++)
            {
                double lik = lower[i * n + k];
                if (lik != 0)
                {
                    Span<double> xk = rhs.Slice(k * c, c);
                    TensorPrimitives.MultiplyAdd(xi, -lik, xk, xk);
                }
            }
        }
    }

    /// <summary>Solves U·X = B for upper-triangular U; B is overwritten with X. Only U's upper triangle is read.</summary>
    public static void SolveUpper(ReadOnlySpan<double> upper, int n, Span<double> rhs, int rhsColumns = 1)
    {
        Check(upper, n, rhs, rhsColumns, nameof(upper));
        int c = rhsColumns;
        for (int i = n - 1; i >= 0; i--)
        {
            Span<double> xi = rhs.Slice(i * c, c);
            for (int k = i + 1; k < n; k++)
            {
                double uik = upper[i * n + k];
                if (uik != 0) TensorPrimitives.MultiplyAdd(rhs.Slice(k * c, c), -uik, xi, xi);
            }
            TensorPrimitives.Divide(xi, upper[i * n + i], xi);
        }
    }

    private static void Check(ReadOnlySpan<double> triangle, int n, Span<double> rhs, int rhsColumns, string name)
    {
        MatrixGuard.Shape(triangle.Length, n, n, name);
        ArgumentOutOfRangeException.ThrowIfNegative(rhsColumns);
        MatrixGuard.Shape(rhs.Length, n, rhsColumns, nameof(rhs));
        for (int i = 0; i < n; i++)
        {
            if (triangle[i * n + i] == 0 || !double.IsFinite(triangle[i * n + i]))
                throw new ArgumentException($"Triangular matrix '{name}' is singular: diagonal entry {i} is {triangle[i * n + i]}.", name);
        }
    }
}
