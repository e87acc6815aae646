using System.Numerics.Tensors;
using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Dense ("full") Laplace posterior N(θ*, P⁻¹) with P = N·H + λ·I for a small parameter block (tests, last-layer
/// Laplace on a few hundred weights): H is the mean per-example Fisher/GGN (d×d).
/// </summary>
/// <remarks>
/// H is eigendecomposed once (H = Q·diag(η)·Qᵀ), so changing λ — as the prior-precision optimisation does hundreds
/// of times — costs O(d) for the log-determinant and O(d²) per covariance product, never a new factorisation.
/// Eigenvalues that rounding made slightly negative (above −1e-10 of the largest) are clamped to 0; a clearly
/// negative one is an error (an indefinite Hessian is not a valid Laplace curvature; use the GGN).
/// </remarks>
public sealed class FullLaplace : ILaplacePosteriorBlock
{
    private readonly double[] _mean;
    private readonly double[] _curvature; // N·η_k, descending order irrelevant
    private readonly double[] _vectorRows; // row k = eigenvector k of H
    private double _priorPrecision = 1;

    /// <summary>Creates the posterior.</summary>
    /// <param name="name">Block name for messages.</param>
    /// <param name="mean">θ* (length d).</param>
    /// <param name="curvature">Mean per-example curvature H, row-major d×d, symmetric PSD (lower triangle read).</param>
    /// <param name="dataCount">N &gt; 0 (pass N/T for a temperature T; pass 1 when H is already a sum over the data).</param>
    /// <param name="priorMean">θ₀ or empty for 0.</param>
    public FullLaplace(string name, ReadOnlySpan<double> mean, ReadOnlySpan<double> curvature, double dataCount, ReadOnlySpan<double> priorMean = default)
    {
        Name = name;
        int d = mean.Length;
        MatrixGuard.Shape(curvature.Length, d, d, $"{name} curvature");
        if (!priorMean.IsEmpty && priorMean.Length != d)
            throw new ArgumentException($"Prior mean of '{name}' has {priorMean.Length} values, mean has {d}.", nameof(priorMean));
        if (!(dataCount > 0) || !double.IsFinite(dataCount))
            throw new ArgumentOutOfRangeException(nameof(dataCount), dataCount, $"Data count of '{name}' must be positive.");
        MatrixGuard.Finite(mean, d, $"{name} mean");
        KroneckerFactorEigenbasis eig = KroneckerFactorEigenbasis.FromSymmetricMatrix(curvature, d, $"{name} curvature");
        _curvature = new double[d];
        TensorPrimitives.Multiply(eig.Values, dataCount, _curvature);
        _vectorRows = eig.EigenvectorRows.ToArray();
        _mean = mean.ToArray();
        DataCount = dataCount;
        double scatter = 0;
        for (int k = 0; k < d; k++)
        {
            double delta = mean[k] - (priorMean.IsEmpty ? 0 : priorMean[k]);
            scatter += delta * delta;
        }
        ScatterFromPriorMean = scatter;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public int ParameterCount => _mean.Length;

    /// <summary>N.</summary>
    public double DataCount { get; }

    /// <inheritdoc/>
    public ReadOnlySpan<double> Mean => _mean;

    /// <inheritdoc/>
    public double ScatterFromPriorMean { get; }

    /// <inheritdoc/>
    public double PriorPrecision
    {
        get => _priorPrecision;
        set
        {
            PrecisionSpectrumTerms.CheckPriorPrecision(value, Name);
            _priorPrecision = value;
        }
    }

    /// <inheritdoc/>
    public PrecisionSpectrumTerms SpectrumTerms(double priorPrecision) => PrecisionSpectrumTerms.FromSpectrum(_curvature, 0, priorPrecision, Name);

    /// <summary>Σ = P⁻¹ as a dense row-major d×d matrix.</summary>
    public double[] Covariance() => SpectralMatrix(SpectralWeights(squareRoot: false));

    /// <inheritdoc/>
    /// <remarks>result = Σ·v = Q·diag(1/(Nη + λ))·Qᵀ·v.</remarks>
    public void CovarianceTimes(ReadOnlySpan<double> v, Span<double> result) => ApplySpectral(v, result, SpectralWeights(squareRoot: false));

    /// <summary>J·Σ·Jᵀ (rows×rows) for a Jacobian J (rows×d, row-major).</summary>
    public double[] ProjectedCovariance(ReadOnlySpan<double> jacobian, int rows)
    {
        int d = ParameterCount;
        if ((long)rows * d != jacobian.Length)
            throw new ArgumentException($"Jacobian for '{Name}' has {jacobian.Length} values, expected {rows}×{d}.", nameof(jacobian));
        // Coordinates of each row in the eigenbasis, scaled by 1/√(h+λ): then J Σ Jᵀ is their Gram matrix.
        var scaled = new double[rows * d];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<double> j = jacobian.Slice(r * d, d);
            for (int k = 0; k < d; k++)
            {
                scaled[r * d + k] = TensorPrimitives.Dot(_vectorRows.AsSpan(k * d, d), j) / Math.Sqrt(_curvature[k] + _priorPrecision);
            }
        }
        var result = new double[rows * rows];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c <= r; c++) result[r * rows + c] = result[c * rows + r] = TensorPrimitives.Dot<double>(scaled.AsSpan(r * d, d), scaled.AsSpan(c * d, d));
        }
        return result;
    }

    /// <summary>Writes one draw θ* + Σ^{1/2}·z into <paramref name="destination"/>.</summary>
    public void Sample(GaussianRandom random, Span<double> destination)
    {
        ArgumentNullException.ThrowIfNull(random);
        var z = new double[ParameterCount];
        random.FillStandardNormal(z);
        ApplySpectral(z, destination, SpectralWeights(squareRoot: true));
        TensorPrimitives.Add(destination, _mean, destination);
    }

    /// <summary>1/(h_k + λ), or 1/√(h_k + λ) for the square root, per eigenvalue.</summary>
    private double[] SpectralWeights(bool squareRoot)
    {
        var weights = new double[_curvature.Length];
        for (int k = 0; k < weights.Length; k++)
        {
            double p = _curvature[k] + _priorPrecision;
            weights[k] = squareRoot ? 1 / Math.Sqrt(p) : 1 / p;
        }
        return weights;
    }

    private void ApplySpectral(ReadOnlySpan<double> v, Span<double> result, double[] weights)
    {
        int d = ParameterCount;
        if (v.Length != d || result.Length != d) throw new ArgumentException($"Vectors for '{Name}' must have length {d}.", nameof(v));
        var coordinates = new double[d];
        for (int k = 0; k < d; k++) coordinates[k] = TensorPrimitives.Dot(_vectorRows.AsSpan(k * d, d), v) * weights[k];
        result.Clear();
        for (int k = 0; k < d; k++) TensorPrimitives.MultiplyAdd(_vectorRows.AsSpan(k * d, d), coordinates[k], result, result);
    }

    private double[] SpectralMatrix(double[] weights)
    {
        int d = ParameterCount;
        var result = new double[d * d];
        for (int k = 0; k < d; k++)
        {
            ReadOnlySpan<double> q = _vectorRows.AsSpan(k * d, d);
            double weight = weights[k];
            for (int i = 0; i < d; i++)
            {
                Span<double> row = result.AsSpan(i * d, d);
                TensorPrimitives.MultiplyAdd(q, weight * q[i], row, row);
            }
        }
        return result;
    }
}
