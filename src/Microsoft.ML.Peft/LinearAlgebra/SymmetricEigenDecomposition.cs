using System.Runtime.CompilerServices;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Eigendecomposition A = V·diag(λ)·Vᵀ of a real symmetric matrix: eigenvalues in ascending order and an orthonormal
/// matrix of eigenvectors.
/// </summary>
/// <remarks>
/// Householder tridiagonalisation (<see cref="HouseholderTridiagonalization"/>) followed by the implicit QL iteration
/// (<see cref="TridiagonalQl"/>): about 9n³ flops with vectors, backward stable (residuals ‖AV − VΛ‖ of order
/// n·ε·‖A‖). Only the lower triangle of the input is read. Each eigenvector's sign is fixed so that its
/// largest-magnitude component is positive (the first such component on ties), which makes results reproducible;
/// eigenvectors of repeated eigenvalues are any orthonormal basis of their eigenspace.
/// </remarks>
public sealed class SymmetricEigenDecomposition
{
    private readonly double[] _values;
    private readonly double[] _vectors;

    private SymmetricEigenDecomposition(int size, double[] values, double[] vectors)
    {
        Size = size;
        _values = values;
        _vectors = vectors;
    }

    /// <summary>Matrix order n.</summary>
    public int Size { get; }

    /// <summary>Eigenvalues λ₀ ≤ λ₁ ≤ … ≤ λ_{n−1}.</summary>
    public ReadOnlySpan<double> Values => _values;

    /// <summary>V, row-major n×n: column j (elements j, n + j, 2n + j, …) is the unit eigenvector of <see cref="Values"/>[j].</summary>
    public ReadOnlySpan<double> Vectors => _vectors;

    /// <summary>Decomposes a symmetric matrix (lower triangle read).</summary>
    /// <param name="matrix">Row-major n×n.</param>
    /// <param name="size">n.</param>
    /// <param name="matrixName">Name used in error messages.</param>
    /// <exception cref="ArgumentException">Wrong length or a non-finite element (named by row and column).</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static SymmetricEigenDecomposition Compute(ReadOnlySpan<double> matrix, int size, string matrixName = "matrix")
    {
        MatrixGuard.Shape(matrix.Length, size, size, matrixName);
        var a = new double[size * size];
        for (int i = 0; i < size; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double v = matrix[i * size + j];
                if (!double.IsFinite(v))
                    throw new ArgumentException($"Matrix '{matrixName}' has a non-finite element {v} at row {i}, column {j}.", matrixName);
                a[i * size + j] = v;
                a[j * size + i] = v;
            }
        }
        var d = new double[size];
        var e = new double[size];
        double[] rows = HouseholderTridiagonalization.Reduce(a, size, d, e);
        TridiagonalQl.Solve(d, e, rows, size, matrixName);
        return Sorted(size, d, rows);
    }

    /// <summary>Float entry point: widens to double and decomposes.</summary>
    public static SymmetricEigenDecomposition Compute(ReadOnlySpan<float> matrix, int size, string matrixName = "matrix")
    {
        MatrixGuard.Shape(matrix.Length, size, size, matrixName);
        var wide = new double[matrix.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = matrix[i];
        return Compute(wide, size, matrixName);
    }

    /// <summary>Copies eigenvector j (a column of <see cref="Vectors"/>) into <paramref name="destination"/>.</summary>
    public void CopyVector(int j, Span<double> destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)j, (uint)Size, nameof(j));
        if (destination.Length != Size) throw new ArgumentException($"Destination must have length {Size}.", nameof(destination));
        for (int i = 0; i < Size; i++) destination[i] = _vectors[i * Size + j];
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static SymmetricEigenDecomposition Sorted(int n, double[] values, double[] vectorRows)
    {
        var order = new int[n];
        for (int i = 0; i < n; i++) order[i] = i;
        Array.Sort((double[])values.Clone(), order); // stable enough: ties keep some order, both are valid
        var sortedValues = new double[n];
        var vectors = new double[n * n];
        for (int j = 0; j < n; j++)
        {
            int source = order[j];
            sortedValues[j] = values[source];
            ReadOnlySpan<double> v = vectorRows.AsSpan(source * n, n);
            int largest = 0;
            for (int i = 1; i < n; i++)
            {
                if (Math.Abs(v[i]) > Math.Abs(v[largest])) largest = i;
            }
            double sign = v[largest] < 0 ? -1 : 1;
            for (int i = 0; i < n; i++) vectors[i * n + j] = sign * v[i];
        }
        return new SymmetricEigenDecomposition(n, sortedValues, vectors);
    }
}
