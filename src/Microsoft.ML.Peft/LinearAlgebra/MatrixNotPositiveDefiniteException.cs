namespace Microsoft.ML.Peft.LinearAlgebra;

/// <summary>
/// A Cholesky factorisation met a non-positive pivot: the named matrix is not symmetric positive definite (or is so
/// ill-conditioned that rounding made it indefinite), even after any jitter the caller allowed.
/// </summary>
public sealed class MatrixNotPositiveDefiniteException : ArgumentException
{
    /// <summary>Creates the exception with a message naming the matrix, the failing pivot and the jitter tried.</summary>
    public MatrixNotPositiveDefiniteException(string matrixName, int size, int pivotIndex, double pivotValue, double jitter, int attempts)
        : base($"Matrix '{matrixName}' ({size}×{size}) is not symmetric positive definite: Cholesky pivot {pivotIndex} is {pivotValue:G6}" +
               (attempts > 1 ? $" after {attempts} attempts with diagonal jitter up to {jitter:G6}." : "."), matrixName)
    {
        MatrixName = matrixName;
        PivotIndex = pivotIndex;
        PivotValue = pivotValue;
        Jitter = jitter;
    }

    /// <summary>Creates the exception with a plain message.</summary>
    public MatrixNotPositiveDefiniteException() : this("matrix", 0, 0, double.NaN, 0, 1) { }

    /// <summary>Creates the exception with a custom message.</summary>
    public MatrixNotPositiveDefiniteException(string message) : base(message) => MatrixName = "matrix";

    /// <summary>Creates the exception with a custom message and inner exception.</summary>
    public MatrixNotPositiveDefiniteException(string message, Exception innerException) : base(message, innerException) => MatrixName = "matrix";

    /// <summary>The name the caller gave the matrix.</summary>
    public string MatrixName { get; }

    /// <summary>Row/column at which the factorisation failed (0-based).</summary>
    public int PivotIndex { get; }

    /// <summary>The non-positive (or NaN) value found where the squared pivot should be.</summary>
    public double PivotValue { get; }

    /// <summary>The largest diagonal jitter added before giving up (0 when no retry was allowed).</summary>
    public double Jitter { get; }
}
