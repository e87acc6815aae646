namespace Microsoft.ML.Peft.Kernels;

/// <summary>Argument checks shared by the GEMM entry points: clear messages before any work starts.</summary>
internal static class GemmArguments
{
    public static void CheckDimensions(int m, int n, int k)
    {
        if (m < 0 || n < 0 || k < 0)
            throw new ArgumentOutOfRangeException(nameof(m), $"GEMM dimensions must be non-negative; got m={m}, n={n}, k={k}.");
    }

    /// <summary>
    /// Checks that a row-major matrix of <paramref name="rows"/>×<paramref name="columns"/> with row stride
    /// <paramref name="leadingDimension"/> fits in <paramref name="length"/> elements.
    /// </summary>
    public static void CheckMatrix(string name, int length, int rows, int columns, int leadingDimension)
    {
        if (leadingDimension < columns || leadingDimension < 0)
        {
            throw new ArgumentOutOfRangeException(name,
                $"Matrix '{name}' ({rows}×{columns} as stored) has leading dimension {leadingDimension}, smaller than its row width {columns}.");
        }
        if (rows == 0 || columns == 0) return;
        long needed = (long)(rows - 1) * leadingDimension + columns;
        if (length < needed)
        {
            throw new ArgumentException(
                $"Matrix '{name}' ({rows}×{columns} as stored, leading dimension {leadingDimension}) needs {needed} elements but has {length}.",
                name);
        }
    }
}
