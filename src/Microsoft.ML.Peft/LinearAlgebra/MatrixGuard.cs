namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// Argument checks shared by the dense routines. Every message names the matrix so that a failure deep inside a
/// Laplace fit or an SVD initialisation says which operand was wrong, not just that "an array" was.
/// </summary>
internal static class MatrixGuard
{
    /// <summary>Throws unless <paramref name="length"/> equals rows × cols and both are non-negative.</summary>
    public static void Shape(int length, int rows, int cols, string name)
    {
        if (rows < 0 || cols < 0)
            throw new ArgumentOutOfRangeException(name, $"Matrix '{name}' has a negative dimension ({rows}×{cols}).");
        if ((long)rows * cols != length)
            throw new ArgumentException($"Matrix '{name}' has {length} elements, expected {rows}×{cols} = {(long)rows * cols}.", name);
    }

    /// <summary>Throws unless every element is finite; names the row and column of the first offender.</summary>
    public static void Finite(ReadOnlySpan<double> data, int cols, string name)
    {
        for (int i = 0; i < data.Length; i++)
        {
            if (!double.IsFinite(data[i]))
            {
                int row = cols == 0 ? 0 : i / cols, col = cols == 0 ? 0 : i % cols;
                throw new ArgumentException($"Matrix '{name}' has a non-finite element {data[i]} at row {row}, column {col}.", name);
            }
        }
    }

    /// <summary>Checks shape and finiteness in one call.</summary>
    public static void ShapeAndFinite(ReadOnlySpan<double> data, int rows, int cols, string name)
    {
        Shape(data.Length, rows, cols, name);
        Finite(data, cols, name);
    }

    /// <summary>Widens a float matrix to double, checking shape and finiteness.</summary>
    public static double[] Widen(ReadOnlySpan<float> data, int rows, int cols, string name)
    {
        Shape(data.Length, rows, cols, name);
        var wide = new double[data.Length];
        for (int i = 0; i < data.Length; i++) wide[i] = data[i];
        Finite(wide, cols, name);
        return wide;
    }
}
