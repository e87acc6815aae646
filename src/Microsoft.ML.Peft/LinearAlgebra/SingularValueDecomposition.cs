using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Thin (or truncated) singular value decomposition A ≈ U·diag(σ)·Vᵀ of an m×n matrix with k factors: U is m×k and
/// Vᵀ is k×n, both with orthonormal columns/rows, σ descending and non-negative.
/// </summary>
/// <remarks>
/// <see cref="ComputeThin(ReadOnlySpan{double}, int, int, string)"/> gives the exact thin SVD (k = min(m, n)) by
/// one-sided Jacobi (<see cref="OneSidedJacobi"/>) on the triangular factor of a preliminary Householder QR, so the
/// Jacobi sweeps cost O(k³) however tall the matrix is. It is accurate to a few ulps relative to ‖A‖ (and better for
/// small σ) and meant for small and medium matrices (up to about a thousand on the short side); use
/// <see cref="RandomizedSvd"/> for the top singular triplets of large ones. Singular vectors of a zero singular value
/// are completed to an orthonormal set; each pair (u_j, v_j) is only defined up to a joint sign.
/// </remarks>
public sealed class SingularValueDecomposition
{
    private readonly double[] _u;
    private readonly double[] _s;
    private readonly double[] _vt;

    internal SingularValueDecomposition(int rows, int columns, double[] u, double[] s, double[] vt)
    {
        Rows = rows;
        Columns = columns;
        _u = u;
        _s = s;
        _vt = vt;
    }

    /// <summary>m.</summary>
    public int Rows { get; }

    /// <summary>n.</summary>
    public int Columns { get; }

    /// <summary>k, the number of singular triplets held.</summary>
    public int Rank => _s.Length;

    /// <summary>U, row-major m×k (orthonormal columns).</summary>
    public ReadOnlySpan<double> U => _u;

    /// <summary>σ₀ ≥ σ₁ ≥ … ≥ σ_{k−1} ≥ 0.</summary>
    public ReadOnlySpan<double> SingularValues => _s;

    /// <summary>Vᵀ, row-major k×n (orthonormal rows).</summary>
    public ReadOnlySpan<double> Vt => _vt;

    /// <summary>Exact thin SVD of a row-major m×n matrix by QR-preconditioned one-sided Jacobi.</summary>
    /// <exception cref="ArgumentException">Wrong length or a non-finite element (named by row and column).</exception>
    public static SingularValueDecomposition ComputeThin(ReadOnlySpan<double> matrix, int rows, int columns, string matrixName = "matrix")
    {
        MatrixGuard.ShapeAndFinite(matrix, rows, columns, matrixName);
        if (rows < columns)
        {
            // A = (Aᵀ)ᵀ = (U'ΣV'ᵀ)ᵀ = V'ΣU'ᵀ.
            SingularValueDecomposition t = ComputeThin(DenseMatrix.Transpose(matrix, rows, columns), columns, rows, matrixName);
            int k = t.Rank;
            return new SingularValueDecomposition(rows, columns, DenseMatrix.Transpose(t._vt, k, rows), t._s, DenseMatrix.Transpose(t._u, columns, k));
        }
        return TallThin(matrix, rows, columns, matrixName);
    }

    /// <summary>Float entry point: widens to double and decomposes.</summary>
    public static SingularValueDecomposition ComputeThin(ReadOnlySpan<float> matrix, int rows, int columns, string matrixName = "matrix") =>
        ComputeThin(MatrixGuard.Widen(matrix, rows, columns, matrixName), rows, columns, matrixName);

    /// <summary>The leading <paramref name="rank"/> triplets (the best rank-r approximation in any unitarily invariant norm).</summary>
    public SingularValueDecomposition Truncate(int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(rank, Rank);
        var u = new double[Rows * rank];
        for (int i = 0; i < Rows; i++) _u.AsSpan(i * Rank, rank).CopyTo(u.AsSpan(i * rank, rank));
        return new SingularValueDecomposition(Rows, Columns, u, _s[..rank], _vt[..(rank * Columns)]);
    }

    /// <summary>U·diag(σ)·Vᵀ as a row-major m×n matrix.</summary>
    public double[] Reconstruct()
    {
        var scaled = new double[_u.Length];
        for (int i = 0; i < Rows; i++) TensorPrimitives.Multiply(_u.AsSpan(i * Rank, Rank), _s, scaled.AsSpan(i * Rank, Rank));
        return DenseMatrix.Multiply(scaled, Rows, Rank, _vt, Columns);
    }

    private static SingularValueDecomposition TallThin(ReadOnlySpan<double> matrix, int m, int n, string matrixName)
    {
        double[]? q = null;
        double[] columnsAsRows;
        if (m > n)
        {
            var qr = ThinQrDecomposition.Compute(matrix, m, n, matrixName);
            q = qr.Q.ToArray();
            columnsAsRows = DenseMatrix.Transpose(qr.R, n, n);
        }
        else
        {
            columnsAsRows = DenseMatrix.Transpose(matrix, n, n);
        }
        double[] vRows = DenseMatrix.Identity(n);
        OneSidedJacobi.Orthogonalize(columnsAsRows, vRows, n, matrixName);

        var norms = new double[n];
        for (int j = 0; j < n; j++) norms[j] = TensorPrimitives.Norm(columnsAsRows.AsSpan(j * n, n));
        var order = new int[n];
        for (int j = 0; j < n; j++) order[j] = j;
        // Descending σ; equal values keep their column order so results are deterministic.
        Array.Sort(order, (x, y) => norms[x] != norms[y] ? norms[y].CompareTo(norms[x]) : x.CompareTo(y));

        var s = new double[n];
        var uRows = new double[n * n]; // row j = left singular vector j of the square factor
        var vt = new double[n * n];
        int zeroCount = 0;
        for (int j = 0; j < n; j++)
        {
            int source = order[j];
            s[j] = norms[source];
            vRows.AsSpan(source * n, n).CopyTo(vt.AsSpan(j * n, n));
            if (s[j] > 0) TensorPrimitives.Divide(columnsAsRows.AsSpan(source * n, n), s[j], uRows.AsSpan(j * n, n));
            else zeroCount++;
        }
        if (zeroCount > 0) CompleteOrthonormalRows(uRows, n, n - zeroCount);
        double[] u = q is null ? DenseMatrix.Transpose(uRows, n, n) : DenseMatrix.MultiplyTransposeB(q, m, n, uRows, n);
        return new SingularValueDecomposition(m, n, u, s, vt);
    }

    /// <summary>
    /// Fills rows [filled, n) with unit vectors orthogonal to all earlier (orthonormal) rows. Each new row starts from
    /// the unit vector e_t with the largest component outside the current span (1 − Σ_r rows[r, t]² ≥ (n − filled)/n,
    /// so it is never negligible) and is projected out of the span twice (Gram–Schmidt with reorthogonalisation).
    /// </summary>
    internal static void CompleteOrthonormalRows(double[] rows, int n, int filled)
    {
        var candidate = new double[n];
        for (; filled < n; filled++)
        {
            int best = 0;
            double bestResidual = -1;
            for (int t = 0; t < n; t++)
            {
                double inSpan = 0;
                for (int r = 0; r < filled; r++) inSpan += rows[r * n + t] * rows[r * n + t];
                if (1 - inSpan > bestResidual)
                {
                    bestResidual = 1 - inSpan;
                    best = t;
                }
            }
            Array.Clear(candidate);
            candidate[best] = 1;
            for (int pass = 0; pass < 2; pass++)
            {
                for (int r = 0; r < filled; r++)
                {
                    ReadOnlySpan<double> row = rows.AsSpan(r * n, n);
                    TensorPrimitives.MultiplyAdd(row, -TensorPrimitives.Dot<double>(row, candidate), candidate, candidate);
                }
            }
            TensorPrimitives.Divide(candidate, TensorPrimitives.Norm<double>(candidate), rows.AsSpan(filled * n, n));
        }
    }
}
