using System.Numerics.Tensors;
using Microsoft.ML.Peft.Kernels;

namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Small dense helpers on row-major matrices (element (i, j) of an r×c matrix at index i·c + j).
/// </summary>
/// <remarks>
/// The double products loop i-p-j so that the innermost operation is a contiguous row axpy
/// (<see cref="TensorPrimitives.MultiplyAdd(ReadOnlySpan{double}, double, ReadOnlySpan{double}, Span{double})"/>),
/// vectorised and cache-friendly without packing. They serve the factorisations here (sizes up to a few thousand);
/// large float products go to <see cref="Gemm.Sgemm"/>.
/// </remarks>
public static class DenseMatrix
{
    /// <summary>The n×n identity.</summary>
    public static double[] Identity(int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        var result = new double[n * n];
        for (int i = 0; i < n; i++) result[i * n + i] = 1;
        return result;
    }

    /// <summary>Aᵀ for A of shape rows×cols (result cols×rows).</summary>
    public static double[] Transpose(ReadOnlySpan<double> a, int rows, int cols)
    {
        MatrixGuard.Shape(a.Length, rows, cols, nameof(a));
        var result = new double[a.Length];
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j < cols; j++) result[j * rows + i] = a[i * cols + j];
        }
        return result;
    }

    /// <summary>C = A·B for A m×k and B k×n (result m×n).</summary>
    public static double[] Multiply(ReadOnlySpan<double> a, int m, int k, ReadOnlySpan<double> b, int n)
    {
        MatrixGuard.Shape(a.Length, m, k, nameof(a));
        MatrixGuard.Shape(b.Length, k, n, nameof(b));
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            Span<double> row = c.AsSpan(i * n, n);
            for (int p = 0; p < k; p++)
            {
                double aip = a[i * k + p];
                if (aip != 0) TensorPrimitives.MultiplyAdd(b.Slice(p * n, n), aip, row, row);
            }
        }
        return c;
    }

    /// <summary>C = Aᵀ·B for A k×m and B k×n (result m×n), without forming Aᵀ.</summary>
    public static double[] MultiplyTransposeA(ReadOnlySpan<double> a, int k, int m, ReadOnlySpan<double> b, int n)
    {
        MatrixGuard.Shape(a.Length, k, m, nameof(a));
        MatrixGuard.Shape(b.Length, k, n, nameof(b));
        var c = new double[m * n];
        for (int p = 0; p < k; p++)
        {
            ReadOnlySpan<double> bRow = b.Slice(p * n, n);
            for (int i = 0; i < m; i++)
            {
                double api = a[p * m + i];
                if (api != 0)
                {
                    Span<double> row = c.AsSpan(i * n, n);
                    TensorPrimitives.MultiplyAdd(bRow, api, row, row);
                }
            }
        }
        return c;
    }

    /// <summary>C = A·Bᵀ for A m×k and B n×k (result m×n): each element is one contiguous dot product.</summary>
    public static double[] MultiplyTransposeB(ReadOnlySpan<double> a, int m, int k, ReadOnlySpan<double> b, int n)
    {
        MatrixGuard.Shape(a.Length, m, k, nameof(a));
        MatrixGuard.Shape(b.Length, n, k, nameof(b));
        var c = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            ReadOnlySpan<double> aRow = a.Slice(i * k, k);
            for (int j = 0; j < n; j++) c[i * n + j] = TensorPrimitives.Dot(aRow, b.Slice(j * k, k));
        }
        return c;
    }

    /// <summary>
    /// The Gram matrix AᵀA (cols×cols) of A rows×cols, accumulated row by row as a sum of outer products on the upper
    /// triangle and mirrored, so the result is exactly symmetric.
    /// </summary>
    public static double[] Gram(ReadOnlySpan<double> a, int rows, int cols)
    {
        MatrixGuard.Shape(a.Length, rows, cols, nameof(a));
        var gram = new double[cols * cols];
        AddOuterProducts(a, rows, cols, 1.0, gram);
        return gram;
    }

    /// <summary>
    /// The Gram matrix AᵀA of a float matrix, computed by <see cref="Gemm.Sgemm"/> in fp32 (accumulation in fp32) and
    /// symmetrised by copying the upper triangle down.
    /// </summary>
    public static float[] Gram(ReadOnlySpan<float> a, int rows, int cols)
    {
        MatrixGuard.Shape(a.Length, rows, cols, nameof(a));
        var gram = new float[cols * cols];
        if (rows > 0 && cols > 0) Gemm.Sgemm(true, false, cols, cols, rows, 1f, a, cols, a, cols, 0f, gram, cols);
        for (int i = 0; i < cols; i++)
        {
            for (int j = 0; j < i; j++) gram[i * cols + j] = gram[j * cols + i];
        }
        return gram;
    }

    /// <summary>Frobenius norm ‖A‖_F (sqrt of the sum of squares, computed with scaling to avoid overflow).</summary>
    public static double FrobeniusNorm(ReadOnlySpan<double> a) => TensorPrimitives.Norm(a);

    /// <summary>
    /// target += scale · Σ_r x_r x_rᵀ over the rows x_r of <paramref name="rows"/> (rowCount×size), on the full square
    /// <paramref name="target"/>: each row contributes one axpy per upper-triangle row, then the lower triangle is
    /// refreshed from the upper so the result stays exactly symmetric.
    /// </summary>
    internal static void AddOuterProducts(ReadOnlySpan<double> rows, int rowCount, int size, double scale, Span<double> target)
    {
        for (int r = 0; r < rowCount; r++)
        {
            ReadOnlySpan<double> x = rows.Slice(r * size, size);
            for (int i = 0; i < size; i++)
            {
                double xi = scale * x[i];
                if (xi == 0) continue;
                Span<double> upper = target.Slice(i * size + i, size - i);
                TensorPrimitives.MultiplyAdd(x[i..], xi, upper, upper);
            }
        }
        for (int i = 0; i < size; i++)
        {
            for (int j = 0; j < i; j++) target[i * size + j] = target[j * size + i];
        }
    }
}
