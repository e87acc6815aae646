using System.Numerics.Tensors;
using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Accumulates one K-FAC Kronecker factor F = Σ_n x_n·x_nᵀ from row batches: input activations a_n (the A factor,
/// optionally with a bias column of ones appended) or output gradients g_n (the G factor).
/// </summary>
/// <remarks>
/// <para><b>Normalisation.</b> The accumulator keeps the plain sum and the number of rows N; <see cref="ToEigenbasis"/>
/// returns the mean F/N. <see cref="KfacLaplaceLayer"/> then uses precision N·(G_mean ⊗ A_mean) + λI, which is exactly
/// laplace-torch's K-FAC (its backends sum the output-side factor over examples and average the input-side factor,
/// G_sum ⊗ A_mean = N·G_mean ⊗ A_mean). Feed per-example gradients of each example's own loss (the gradient of a
/// summed loss). bayesian_lora instead back-propagates a batch-mean loss (gradients carry a 1/B factor) and sums
/// both factors without dividing; convert by multiplying its gradients by B.</para>
/// <para><b>Low rank.</b> When the side length is ≥ <c>lowRankThreshold</c> (bayesian_lora's <c>lr_threshold</c>), the
/// factor is kept as a root L (size×k, F ≈ L·Lᵀ, k = <c>lowRankRank</c>, bayesian_lora's <c>n_kfac</c>) updated by
/// bayesian_lora's incremental SVD: each chunk of rows X is folded as [L, Xᵀ] = U·Σ·Vᵀ, L ← U_k·Σ_k, which is exact
/// while the total rank stays ≤ k and otherwise keeps the best rank-k approximation of (previous estimate + new
/// rows). Batches are folded in chunks of at most <see cref="LowRankChunkRows"/> rows to bound the SVD size, so the
/// result depends (only through the truncations) on the order and chunking of the data. All arithmetic is in double.</para>
/// </remarks>
public sealed class KroneckerFactorAccumulator
{
    /// <summary>Largest number of rows folded into the low-rank root by one incremental SVD.</summary>
    public const int LowRankChunkRows = 256;

    private readonly int _inputWidth;
    private readonly double[]? _sum;   // exact: Size×Size
    private double[] _root = [];       // low rank: Size×_rootColumns
    private int _rootColumns;
    private bool _singlePrecision;   // some rows arrived as a float Gram (AddGram)

    /// <summary>Creates an empty accumulator.</summary>
    /// <param name="inputWidth">Width of the rows that will be added (layer in_features for A, out_features for G).</param>
    /// <param name="appendBias">Append a constant 1 to every row (A factor of a layer with bias, as bayesian_lora does).</param>
    /// <param name="lowRankThreshold">Sides ≥ this are kept low-rank (default 512).</param>
    /// <param name="lowRankRank">Rank k of a low-rank factor (default 10, bayesian_lora's example n_kfac).</param>
    /// <param name="name">Name used in error messages, e.g. "layers.0.q_proj.lora_A input factor".</param>
    public KroneckerFactorAccumulator(int inputWidth, bool appendBias = false, int lowRankThreshold = 512, int lowRankRank = 10, string name = "factor")
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(inputWidth, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(lowRankThreshold, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(lowRankRank, 1);
        _inputWidth = inputWidth;
        AppendBias = appendBias;
        Size = inputWidth + (appendBias ? 1 : 0);
        Name = name;
        IsLowRank = Size >= lowRankThreshold && lowRankRank < Size;
        LowRankRank = lowRankRank;
        if (!IsLowRank) _sum = new double[Size * Size];
    }

    /// <summary>Name used in error messages.</summary>
    public string Name { get; }

    /// <summary>Side length of the factor (input width, plus one with a bias column).</summary>
    public int Size { get; }

    /// <summary>Whether a ones column is appended to each row.</summary>
    public bool AppendBias { get; }

    /// <summary>Whether the factor is kept as a rank-<see cref="LowRankRank"/> root.</summary>
    public bool IsLowRank { get; }

    /// <summary>Rank k used when <see cref="IsLowRank"/>.</summary>
    public int LowRankRank { get; }

    /// <summary>Rows added so far (N).</summary>
    public long SampleCount { get; private set; }

    /// <summary>Adds <paramref name="rowCount"/> rows of width inputWidth (row-major).</summary>
    /// <exception cref="ArgumentException">Length mismatch or a non-finite value (row and column named).</exception>
    public void AddRows(ReadOnlySpan<float> rows, int rowCount)
    {
        CheckShape(rows.Length, rowCount);
        var wide = new double[rows.Length];
        for (int i = 0; i < wide.Length; i++) wide[i] = rows[i];
        AddRows(wide, rowCount);
    }

    /// <summary>Adds <paramref name="rowCount"/> rows of width inputWidth (row-major).</summary>
    public void AddRows(ReadOnlySpan<double> rows, int rowCount)
    {
        CheckShape(rows.Length, rowCount);
        MatrixGuard.Finite(rows, _inputWidth, Name);
        for (int start = 0; start < rowCount; start += LowRankChunkRows)
        {
            int count = Math.Min(LowRankChunkRows, rowCount - start);
            double[] chunk = Augmented(rows.Slice(start * _inputWidth, count * _inputWidth), count);
            if (IsLowRank) Fold(chunk, count);
            else DenseMatrix.AddOuterProducts(chunk, count, Size, 1.0, _sum);
        }
        SampleCount += rowCount;
    }

    /// <summary>
    /// Adds a precomputed sum of outer products Σ x xᵀ over <paramref name="rowCount"/> rows (Size×Size, row-major, from
    /// <see cref="SinglePrecisionGram"/>), e.g. one Gram shared by two factors that see the same rows. Exact factors only.
    /// </summary>
    /// <exception cref="InvalidOperationException">The factor is low rank (it needs the rows themselves).</exception>
    /// <exception cref="ArgumentException">Wrong length or a non-finite value.</exception>
    public void AddGram(ReadOnlySpan<double> gram, int rowCount)
    {
        if (IsLowRank) throw new InvalidOperationException($"Kronecker factor '{Name}' is low rank; add its rows, not a Gram matrix.");
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        if (gram.Length != Size * Size) throw new ArgumentException($"Gram matrix for '{Name}' has {gram.Length} values, expected {Size}×{Size}.", nameof(gram));
        MatrixGuard.Finite(gram, Size, Name);
        TensorPrimitives.Add(_sum!, gram, _sum!);
        SampleCount += rowCount;
        _singlePrecision = true;
    }

    /// <summary>Rows per single-precision GEMM in <see cref="SinglePrecisionGram"/>: bounds the float rounding of a sum.</summary>
    public const int SinglePrecisionChunkRows = 64;

    /// <summary>
    /// XᵀX (width×width, row-major, symmetric) of <paramref name="rowCount"/> float rows: one single-precision GEMM per
    /// <see cref="SinglePrecisionChunkRows"/> rows, the chunks summed in double. Why: the K-FAC outer products of a whole
    /// batch then run at GEMM speed instead of ~width²/2 dot products per chunk in double, while each float sum spans
    /// at most 64 products (relative rounding ≲ 64·6e-8 ≈ 4e-6 even for identical rows; ~1e-7 typically), far below
    /// K-FAC's own approximation error.
    /// </summary>
    public static double[] SinglePrecisionGram(ReadOnlySpan<float> rows, int rowCount, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        var gram = new double[width * width];
        SinglePrecisionGram(rows, rowCount, width, gram, new float[width * width]);
        return gram;
    }

    /// <summary>
    /// <see cref="SinglePrecisionGram(ReadOnlySpan{float}, int, int)"/> into caller-owned buffers (overwrites
    /// <paramref name="gram"/>, width²; <paramref name="scratch"/> holds at least width² floats), so a fit that adds a
    /// Gram per factor per batch allocates nothing per batch.
    /// </summary>
    internal static void SinglePrecisionGram(ReadOnlySpan<float> rows, int rowCount, int width, Span<double> gram, Span<float> scratch)
    {
        if ((long)rowCount * width != rows.Length) throw new ArgumentException($"{rows.Length} values are not {rowCount} rows of {width}.", nameof(rows));
        if (gram.Length != width * width || scratch.Length < width * width)
            throw new ArgumentException($"Gram buffers of {gram.Length} and {scratch.Length} values for width {width}; need {width * width} each.", nameof(gram));
        gram.Clear();
        var chunk = scratch[..(width * width)];
        for (int start = 0; start < rowCount; start += SinglePrecisionChunkRows)
        {
            int count = Math.Min(SinglePrecisionChunkRows, rowCount - start);
            var x = rows.Slice(start * width, count * width);
            Kernels.Gemm.Sgemm(true, false, width, width, count, 1f, x, width, x, width, 0f, chunk, width);
            for (int i = 0; i < width; i++)
            {
                for (int j = 0; j < width; j++) gram[i * width + j] += 0.5 * ((double)chunk[i * width + j] + chunk[j * width + i]);   // a GEMM's triangles may round differently
            }
        }
    }

    /// <summary>The mean factor F/N as a dense matrix (materialises Size² values; for small factors and tests).</summary>
    public double[] MeanMatrix()
    {
        RequireSamples();
        if (!IsLowRank)
        {
            var mean = (double[])_sum!.Clone();
            for (int i = 0; i < mean.Length; i++) mean[i] /= SampleCount;
            return mean;
        }
        return ToEigenbasis().ToMatrix();
    }

    /// <summary>The low-rank root L with F_sum ≈ L·Lᵀ (row-major Size×columns; empty for an exact factor).</summary>
    public ReadOnlySpan<double> LowRankRoot => _root;

    /// <summary>Number of columns of <see cref="LowRankRoot"/> (≤ <see cref="LowRankRank"/>).</summary>
    public int LowRankRootColumns => _rootColumns;

    /// <summary>Eigenbasis of the mean factor F/N (low-rank when <see cref="IsLowRank"/>).</summary>
    /// <exception cref="InvalidOperationException">No rows were added.</exception>
    public KroneckerFactorEigenbasis ToEigenbasis()
    {
        RequireSamples();
        if (!IsLowRank)
        {
            var mean = (double[])_sum!.Clone();
            for (int i = 0; i < mean.Length; i++) mean[i] /= SampleCount;
            // Single-precision Grams (AddGram) leave rounding of ~1e-7 × the largest eigenvalue in the null directions.
            return KroneckerFactorEigenbasis.FromSymmetricMatrix(mean, Size, Name, _singlePrecision ? 1e-5 : 1e-10);
        }
        // F/N = (L/√N)(L/√N)ᵀ.
        var scaled = (double[])_root.Clone();
        double s = 1 / Math.Sqrt(SampleCount);
        for (int i = 0; i < scaled.Length; i++) scaled[i] *= s;
        return KroneckerFactorEigenbasis.FromRoot(scaled, Size, _rootColumns, Name);
    }

    private void Fold(double[] chunk, int count)
    {
        // C = [L, Xᵀ] (Size × (k + count)); keep the top-k left singular vectors scaled by their singular values.
        int columns = _rootColumns + count;
        var c = new double[Size * columns];
        for (int i = 0; i < Size; i++)
        {
            _root.AsSpan(i * _rootColumns, _rootColumns).CopyTo(c.AsSpan(i * columns, _rootColumns));
            for (int r = 0; r < count; r++) c[i * columns + _rootColumns + r] = chunk[r * Size + i];
        }
        var svd = SingularValueDecomposition.ComputeThin(c, Size, columns, Name);
        int keep = Math.Min(LowRankRank, svd.Rank);
        var root = new double[Size * keep];
        for (int i = 0; i < Size; i++)
        {
            for (int j = 0; j < keep; j++) root[i * keep + j] = svd.U[i * svd.Rank + j] * svd.SingularValues[j];
        }
        _root = root;
        _rootColumns = keep;
    }

    private double[] Augmented(ReadOnlySpan<double> rows, int count)
    {
        if (!AppendBias) return rows.ToArray();
        var result = new double[count * Size];
        for (int r = 0; r < count; r++)
        {
            rows.Slice(r * _inputWidth, _inputWidth).CopyTo(result.AsSpan(r * Size, _inputWidth));
            result[r * Size + _inputWidth] = 1;
        }
        return result;
    }

    private void CheckShape(int length, int rowCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rowCount);
        if ((long)rowCount * _inputWidth != length)
            throw new ArgumentException($"Rows for '{Name}' have {length} values, expected {rowCount}×{_inputWidth}.", "rows");
    }

    private void RequireSamples()
    {
        if (SampleCount == 0) throw new InvalidOperationException($"Kronecker factor '{Name}' has no rows yet.");
    }
}
