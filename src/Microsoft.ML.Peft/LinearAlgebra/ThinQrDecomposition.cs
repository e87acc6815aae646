using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Thin QR factorisation A = Q·R of an m×n matrix with m ≥ n by Householder reflections: Q is m×n with orthonormal
/// columns, R is n×n upper triangular with a non-negative diagonal (which makes the factorisation unique when A has
/// full column rank).
/// </summary>
/// <remarks>
/// The work is done on Aᵀ so that the columns being reflected are contiguous rows: reflector k maps column k onto
/// R[k, k]·e_k and is applied to the later columns as row updates c ← c − (c·w)·w. Q is formed afterwards by applying
/// the reflectors to the first n unit vectors in reverse order. Q stays orthonormal to rounding even for
/// rank-deficient A (then some diagonal entries of R are 0), which is what orthonormalising a basis needs.
/// </remarks>
public sealed class ThinQrDecomposition
{
    private readonly double[] _q;
    private readonly double[] _r;

    private ThinQrDecomposition(int rows, int columns, double[] q, double[] r)
    {
        Rows = rows;
        Columns = columns;
        _q = q;
        _r = r;
    }

    /// <summary>m.</summary>
    public int Rows { get; }

    /// <summary>n.</summary>
    public int Columns { get; }

    /// <summary>Q, row-major m×n, orthonormal columns.</summary>
    public ReadOnlySpan<double> Q => _q;

    /// <summary>R, row-major n×n, upper triangular, diagonal ≥ 0.</summary>
    public ReadOnlySpan<double> R => _r;

    /// <summary>Factorises a row-major m×n matrix (m ≥ n).</summary>
    /// <exception cref="ArgumentException">m &lt; n, wrong length or a non-finite element (named).</exception>
    public static ThinQrDecomposition Compute(ReadOnlySpan<double> matrix, int rows, int columns, string matrixName = "matrix")
    {
        MatrixGuard.ShapeAndFinite(matrix, rows, columns, matrixName);
        if (rows < columns)
            throw new ArgumentException($"Thin QR of '{matrixName}' needs rows ≥ columns, got {rows}×{columns}; factorise the transpose instead.", matrixName);
        int m = rows, n = columns;
        double[] work = DenseMatrix.Transpose(matrix, m, n); // row j = column j of A
        var reflectors = new double[n * m];                // reflector k in row k, entries k..m-1
        var r = new double[n * n];
        for (int k = 0; k < n; k++)
        {
            Span<double> x = work.AsSpan(k * m + k, m - k);
            double norm = TensorPrimitives.Norm(x);
            Span<double> w = reflectors.AsSpan(k * m + k, m - k);
            if (norm == 0) continue; // zero column: no reflection, R[k, k] = 0
            double alpha = x[0] > 0 ? -norm : norm;
            x.CopyTo(w);
            w[0] -= alpha;
            TensorPrimitives.Multiply(w, Math.Sqrt(2) / TensorPrimitives.Norm(w), w);
            for (int j = k + 1; j < n; j++)
            {
                Span<double> column = work.AsSpan(j * m + k, m - k);
                TensorPrimitives.MultiplyAdd(w, -TensorPrimitives.Dot(column, w), column, column);
            }
            x.Clear();
            x[0] = alpha;
        }
        for (int k = 0; k < n; k++)
        {
            for (int j = k; j < n; j++) r[k * n + j] = work[j * m + k];
        }

        // Qᵀ = [I_n 0]·H_{n−1}·…·H₀, built right to left on rows; row i is untouched by reflectors k > i.
        var qt = new double[n * m];
        for (int i = 0; i < n; i++) qt[i * m + i] = 1;
        for (int k = n - 1; k >= 0; k--)
        {
            ReadOnlySpan<double> w = reflectors.AsSpan(k * m + k, m - k);
            for (int i = k; i < n; i++)
            {
                Span<double> row = qt.AsSpan(i * m + k, m - k);
                TensorPrimitives.MultiplyAdd(w, -TensorPrimitives.Dot(row, w), row, row);
            }
        }
        // Make diag(R) ≥ 0 by flipping the sign of row k of R and column k of Q together.
        for (int k = 0; k < n; k++)
        {
            if (r[k * n + k] < 0)
            {
                TensorPrimitives.Negate(r.AsSpan(k * n + k, n - k), r.AsSpan(k * n + k, n - k));
                TensorPrimitives.Negate(qt.AsSpan(k * m, m), qt.AsSpan(k * m, m));
            }
        }
        return new ThinQrDecomposition(m, n, DenseMatrix.Transpose(qt, n, m), r);
    }

    /// <summary>Float entry point: widens to double and factorises.</summary>
    public static ThinQrDecomposition Compute(ReadOnlySpan<float> matrix, int rows, int columns, string matrixName = "matrix") =>
        Compute(MatrixGuard.Widen(matrix, rows, columns, matrixName), rows, columns, matrixName);

    /// <summary>An m×n matrix with orthonormal columns spanning A's column space (Q of the thin QR; m ≥ n).</summary>
    public static double[] OrthonormalizeColumns(ReadOnlySpan<double> matrix, int rows, int columns, string matrixName = "matrix") =>
        Compute(matrix, rows, columns, matrixName)._q;

    /// <summary>
    /// An m×n matrix with orthonormal rows spanning A's row space (m ≤ n), from the thin QR of Aᵀ: row i is the
    /// Gram–Schmidt orthonormalisation of rows 0..i (up to rounding), with a positive component along row i.
    /// </summary>
    public static double[] OrthonormalizeRows(ReadOnlySpan<double> matrix, int rows, int columns, string matrixName = "matrix")
    {
        MatrixGuard.Shape(matrix.Length, rows, columns, matrixName);
        ThinQrDecomposition qr = Compute(DenseMatrix.Transpose(matrix, rows, columns), columns, rows, matrixName);
        return DenseMatrix.Transpose(qr._q, columns, rows);
    }
}
