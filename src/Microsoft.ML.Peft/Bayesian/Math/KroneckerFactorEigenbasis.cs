using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// A symmetric positive semi-definite Kronecker factor F (size×size) held as F = Σ_j λ_j·e_j·e_jᵀ over
/// <see cref="Rank"/> orthonormal eigenvectors; F is zero on the orthogonal complement of their span.
/// </summary>
/// <remarks>
/// A full-rank factor keeps all size eigenpairs; a low-rank one (bayesian_lora's large-side approximation) keeps k ≪
/// size and every formula in <see cref="KfacLaplaceLayer"/> treats the missing directions as eigenvalue 0 exactly,
/// so nothing of size² is ever materialised. Eigenvalues are non-negative and descending: values that rounding made
/// slightly negative (down to −1e-10 of the largest magnitude) are clamped to 0; a clearly negative eigenvalue is an
/// error, because a Laplace curvature factor must be PSD (a Fisher/GGN factor is by construction).
/// </remarks>
public sealed class KroneckerFactorEigenbasis
{
    private const double NegativeTolerance = 1e-10;
    private readonly double[] _values;
    private readonly double[] _vectorRows;

    private KroneckerFactorEigenbasis(int size, double[] values, double[] vectorRows)
    {
        Size = size;
        _values = values;
        _vectorRows = vectorRows;
    }

    /// <summary>Side length of the factor.</summary>
    public int Size { get; }

    /// <summary>Number of eigenpairs kept (Size for an exact factor).</summary>
    public int Rank => _values.Length;

    /// <summary>True when fewer than <see cref="Size"/> eigenpairs are kept (the rest are 0).</summary>
    public bool IsLowRank => Rank < Size;

    /// <summary>Eigenvalues, descending, ≥ 0.</summary>
    public ReadOnlySpan<double> Values => _values;

    /// <summary>Eigenvectors as rows: row-major Rank×Size, row j is the unit eigenvector of <see cref="Values"/>[j].</summary>
    public ReadOnlySpan<double> EigenvectorRows => _vectorRows;

    /// <summary>
    /// Rebuilds a factor from eigenpairs produced earlier by this class (values descending, ≥ 0; rows Rank×Size), as
    /// saved with a fitted posterior; only shapes and finiteness are checked.
    /// </summary>
    internal static KroneckerFactorEigenbasis FromEigenpairs(int size, ReadOnlySpan<double> values, ReadOnlySpan<double> vectorRows, string factorName)
    {
        if (size <= 0 || values.Length > size || vectorRows.Length != values.Length * size)
            throw new InvalidDataException($"{factorName}: {values.Length} eigenvalues and {vectorRows.Length} eigenvector entries do not fit a factor of side {size}");
        foreach (var v in values) if (!(v >= 0) || !double.IsFinite(v)) throw new InvalidDataException($"{factorName}: eigenvalue {v} is not finite and ≥ 0");
        foreach (var v in vectorRows) if (!double.IsFinite(v)) throw new InvalidDataException($"{factorName}: an eigenvector entry is not finite");
        return new KroneckerFactorEigenbasis(size, values.ToArray(), vectorRows.ToArray());
    }

    /// <summary>Eigendecomposition of a dense symmetric PSD factor (lower triangle read).</summary>
    /// <exception cref="ArgumentException">Wrong length, non-finite element, or a clearly negative eigenvalue (named).</exception>
    public static KroneckerFactorEigenbasis FromSymmetricMatrix(ReadOnlySpan<double> factor, int size, string factorName = "factor") =>
        FromSymmetricMatrix(factor, size, factorName, NegativeTolerance);

    /// <summary>
    /// As <see cref="FromSymmetricMatrix(ReadOnlySpan{double}, int, string)"/>, with eigenvalues down to −tolerance × the
    /// largest counted as rounding (set to 0): a factor summed in single precision needs ~1e-6 instead of 1e-10.
    /// </summary>
    internal static KroneckerFactorEigenbasis FromSymmetricMatrix(ReadOnlySpan<double> factor, int size, string factorName, double negativeTolerance)
    {
        var eig = SymmetricEigenDecomposition.Compute(factor, size, factorName);
        var values = new double[size];
        var rows = new double[size * size];
        for (int j = 0; j < size; j++)
        {
            int source = size - 1 - j; // ascending → descending
            values[j] = eig.Values[source];
            for (int i = 0; i < size; i++) rows[j * size + i] = eig.Vectors[i * size + source];
        }
        return Checked(size, values, rows, factorName, negativeTolerance);
    }

    /// <summary>
    /// The factor F = R·Rᵀ given its root R (size×rootColumns, row-major), e.g. the low-rank root kept by the
    /// incremental SVD: F's eigenvectors are R's left singular vectors and its eigenvalues their squared singular values.
    /// </summary>
    public static KroneckerFactorEigenbasis FromRoot(ReadOnlySpan<double> root, int size, int rootColumns, string factorName = "factor")
    {
        var svd = SingularValueDecomposition.ComputeThin(root, size, rootColumns, factorName);
        int k = svd.Rank;
        var values = new double[k];
        var rows = new double[k * size];
        for (int j = 0; j < k; j++)
        {
            values[j] = svd.SingularValues[j] * svd.SingularValues[j];
            for (int i = 0; i < size; i++) rows[j * size + i] = svd.U[i * k + j];
        }
        return Checked(size, values, rows, factorName);
    }

    /// <summary>The factor scaled by c &gt; 0 (same eigenvectors, eigenvalues × c).</summary>
    public KroneckerFactorEigenbasis Scale(double c)
    {
        if (!(c > 0) || !double.IsFinite(c)) throw new ArgumentOutOfRangeException(nameof(c), c, "Scale must be positive and finite.");
        var values = new double[Rank];
        for (int j = 0; j < Rank; j++) values[j] = c * _values[j];
        return new KroneckerFactorEigenbasis(Size, values, _vectorRows);
    }

    /// <summary>F as a dense row-major Size×Size matrix (for tests and small factors).</summary>
    public double[] ToMatrix()
    {
        var f = new double[Size * Size];
        for (int j = 0; j < Rank; j++)
        {
            ReadOnlySpan<double> e = _vectorRows.AsSpan(j * Size, Size);
            for (int a = 0; a < Size; a++)
            {
                double scaled = _values[j] * e[a];
                for (int b = 0; b < Size; b++) f[a * Size + b] += scaled * e[b];
            }
        }
        return f;
    }

    private static KroneckerFactorEigenbasis Checked(int size, double[] values, double[] rows, string name, double negativeTolerance = NegativeTolerance)
    {
        double largest = 0;
        foreach (double v in values) largest = Math.Max(largest, Math.Abs(v));
        for (int j = 0; j < values.Length; j++)
        {
            if (values[j] < -negativeTolerance * largest)
                throw new ArgumentException($"Kronecker factor '{name}' is not positive semi-definite: eigenvalue {values[j]:G6} (largest {largest:G6}).", name);
            if (values[j] < 0) values[j] = 0;
        }
        return new KroneckerFactorEigenbasis(size, values, rows);
    }
}
