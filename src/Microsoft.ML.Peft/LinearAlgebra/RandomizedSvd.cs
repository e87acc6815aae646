using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Top-r singular triplets of a large m×n matrix by randomized range finding with oversampling and power (subspace)
/// iterations (Halko, Martinsson and Tropp 2011, algorithms 4.4 and 5.1), reproducible for a given seed.
/// </summary>
/// <remarks>
/// <para>With ℓ = min(r + oversampling, min(m, n)) Gaussian test vectors Ω (n×ℓ): Q = orth(A·Ω); each power
/// iteration replaces Q by orth(A·orth(Aᵀ·Q)), re-orthonormalising between the two products so the small singular
/// directions are not lost to rounding. Then Z = Aᵀ·Q (n×ℓ) = Bᵀ with B = QᵀA, whose exact thin SVD
/// Z = U_z·Σ·V_zᵀ gives A ≈ (Q·V_z)·Σ·U_zᵀ, truncated to r.</para>
/// <para>Cost: 2(q + 1) products of A with an n×ℓ or m×ℓ block, plus O((m + n)ℓ²) for the small factorisations.
/// The error of the rank-r result approaches the optimal σ_{r+1} as q grows; q = 2 and oversampling 10 are the
/// customary defaults. The float overload runs the products through <see cref="Gemm.Sgemm"/> in fp32 (the matrix is
/// never widened, so an m×n float weight costs no extra memory) and does the small dense work in double; its
/// singular values then carry fp32 rounding (relative error around 1e-6).</para>
/// </remarks>
public static class RandomizedSvd
{
    /// <summary>Top-<paramref name="rank"/> SVD of a row-major double matrix.</summary>
    /// <param name="matrix">Row-major m×n.</param>
    /// <param name="rows">m.</param>
    /// <param name="columns">n.</param>
    /// <param name="rank">r, 1 ≤ r ≤ min(m, n).</param>
    /// <param name="oversampling">Extra test vectors beyond r (≥ 0).</param>
    /// <param name="powerIterations">Subspace iterations q (≥ 0).</param>
    /// <param name="seed">Seed of the Gaussian test matrix.</param>
    /// <param name="matrixName">Name used in error messages.</param>
    public static SingularValueDecomposition Compute(
        ReadOnlySpan<double> matrix, int rows, int columns, int rank,
        int oversampling = 10, int powerIterations = 2, long seed = 0, string matrixName = "matrix")
    {
        MatrixGuard.ShapeAndFinite(matrix, rows, columns, matrixName);
        double[] a = matrix.ToArray();
        return Run(rows, columns, rank, oversampling, powerIterations, seed, matrixName,
            (x, width) => DenseMatrix.Multiply(a, rows, columns, x, width),
            (y, width) => DenseMatrix.MultiplyTransposeA(a, rows, columns, y, width));
    }

    /// <summary>Top-<paramref name="rank"/> SVD of a row-major float matrix; products in fp32 via <see cref="Gemm.Sgemm"/>.</summary>
    public static SingularValueDecomposition Compute(
        ReadOnlySpan<float> matrix, int rows, int columns, int rank,
        int oversampling = 10, int powerIterations = 2, long seed = 0, string matrixName = "matrix")
    {
        MatrixGuard.Shape(matrix.Length, rows, columns, matrixName);
        for (int i = 0; i < matrix.Length; i++)
        {
            if (!float.IsFinite(matrix[i]))
                throw new ArgumentException($"Matrix '{matrixName}' has a non-finite element {matrix[i]} at row {i / columns}, column {i % columns}.", matrixName);
        }
        float[] a = matrix.ToArray();
        return Run(rows, columns, rank, oversampling, powerIterations, seed, matrixName,
            (x, width) => FloatProduct(a, false, rows, columns, x, width),
            (y, width) => FloatProduct(a, true, rows, columns, y, width));
    }

    private static SingularValueDecomposition Run(
        int m, int n, int rank, int oversampling, int powerIterations, long seed, string matrixName,
        Func<double[], int, double[]> timesA, Func<double[], int, double[]> timesAT)
    {
        int shortSide = Math.Min(m, n);
        if (rank < 1 || rank > shortSide)
            throw new ArgumentOutOfRangeException(nameof(rank), $"Rank {rank} is outside [1, {shortSide}] for '{matrixName}' ({m}×{n}).");
        ArgumentOutOfRangeException.ThrowIfNegative(oversampling);
        ArgumentOutOfRangeException.ThrowIfNegative(powerIterations);
        int width = Math.Min(rank + oversampling, shortSide);

        var omega = new double[n * width];
        new GaussianRandom(seed).FillStandardNormal(omega);
        double[] q = ThinQrDecomposition.OrthonormalizeColumns(timesA(omega, width), m, width, matrixName);
        for (int i = 0; i < powerIterations; i++)
        {
            double[] z = ThinQrDecomposition.OrthonormalizeColumns(timesAT(q, width), n, width, matrixName);
            q = ThinQrDecomposition.OrthonormalizeColumns(timesA(z, width), m, width, matrixName);
        }
        double[] bt = timesAT(q, width); // n×ℓ = (QᵀA)ᵀ
        SingularValueDecomposition small = SingularValueDecomposition.ComputeThin(bt, n, width, matrixName);
        // A ≈ Q·B = Q·(U_z Σ V_zᵀ)ᵀ = (Q·V_z)·Σ·U_zᵀ.
        double[] u = DenseMatrix.MultiplyTransposeB(q, m, width, small.Vt, width);
        double[] vt = DenseMatrix.Transpose(small.U, n, width);
        return new SingularValueDecomposition(m, n, u, small.SingularValues.ToArray(), vt).Truncate(rank);
    }

    /// <summary>op(A)·X with A float m×n (op = transpose when <paramref name="transpose"/>) and X double, in fp32.</summary>
    private static double[] FloatProduct(float[] a, bool transpose, int m, int n, double[] x, int width)
    {
        int inner = transpose ? m : n, outer = transpose ? n : m;
        var xf = new float[inner * width];
        for (int i = 0; i < xf.Length; i++) xf[i] = (float)x[i];
        var result = new float[outer * width];
        Gemm.Sgemm(transpose, false, outer, width, inner, 1f, a, n, xf, width, 0f, result, width);
        var wide = new double[result.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = result[i];
        return wide;
    }
}
