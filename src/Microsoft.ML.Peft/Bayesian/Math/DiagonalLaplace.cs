using System.Numerics.Tensors;
using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Diagonal Laplace posterior N(θ*, P⁻¹) with P = N·diag(F) + λ·I, where F is the mean per-example diagonal
/// Fisher/GGN (laplace-torch's <c>hessian_structure='diag'</c>, whose backends sum the per-example diagonals: N·F).
/// </summary>
public sealed class DiagonalLaplace : ILaplacePosteriorBlock
{
    private readonly double[] _mean;
    private readonly double[] _curvature; // N·F_k
    private double _priorPrecision = 1;

    /// <summary>Creates the posterior.</summary>
    /// <param name="name">Block name for messages.</param>
    /// <param name="mean">θ* (length d).</param>
    /// <param name="curvatureDiagonal">Mean per-example diagonal F (length d, ≥ 0).</param>
    /// <param name="dataCount">N &gt; 0 (pass N/T for a temperature T).</param>
    /// <param name="priorMean">θ₀ or empty for 0.</param>
    public DiagonalLaplace(string name, ReadOnlySpan<double> mean, ReadOnlySpan<double> curvatureDiagonal, double dataCount, ReadOnlySpan<double> priorMean = default)
    {
        Name = name;
        if (curvatureDiagonal.Length != mean.Length)
            throw new ArgumentException($"Curvature diagonal of '{name}' has {curvatureDiagonal.Length} values, mean has {mean.Length}.", nameof(curvatureDiagonal));
        if (!priorMean.IsEmpty && priorMean.Length != mean.Length)
            throw new ArgumentException($"Prior mean of '{name}' has {priorMean.Length} values, mean has {mean.Length}.", nameof(priorMean));
        if (!(dataCount > 0) || !double.IsFinite(dataCount))
            throw new ArgumentOutOfRangeException(nameof(dataCount), dataCount, $"Data count of '{name}' must be positive.");
        MatrixGuard.Finite(mean, mean.Length, $"{name} mean");
        _curvature = new double[mean.Length];
        for (int k = 0; k < mean.Length; k++)
        {
            double f = curvatureDiagonal[k];
            if (!(f >= 0) || !double.IsFinite(f))
                throw new ArgumentException($"Curvature diagonal of '{name}' must be finite and ≥ 0; entry {k} is {f}.", nameof(curvatureDiagonal));
            _curvature[k] = dataCount * f;
        }
        _mean = mean.ToArray();
        MeanCurvature = curvatureDiagonal.ToArray();
        DataCount = dataCount;
        double scatter = 0;
        for (int k = 0; k < mean.Length; k++)
        {
            double delta = mean[k] - (priorMean.IsEmpty ? 0 : priorMean[k]);
            scatter += delta * delta;
        }
        ScatterFromPriorMean = scatter;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>The mean per-example diagonal F given at construction (kept so a fitted posterior can be saved and rebuilt exactly).</summary>
    internal double[] MeanCurvature { get; }

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

    /// <summary>Posterior variances 1/(N·F_k + λ).</summary>
    public void PosteriorVariance(Span<double> destination)
    {
        CheckLength(destination.Length, nameof(destination));
        for (int k = 0; k < _curvature.Length; k++) destination[k] = 1 / (_curvature[k] + _priorPrecision);
    }

    /// <inheritdoc/>
    public void CovarianceTimes(ReadOnlySpan<double> v, Span<double> result)
    {
        CheckLength(v.Length, nameof(v));
        CheckLength(result.Length, nameof(result));
        for (int k = 0; k < v.Length; k++) result[k] = v[k] / (_curvature[k] + _priorPrecision);
    }

    /// <summary>J·Σ·Jᵀ (rows×rows) for a Jacobian J (rows×d, row-major).</summary>
    public double[] ProjectedCovariance(ReadOnlySpan<double> jacobian, int rows)
    {
        int d = ParameterCount;
        if ((long)rows * d != jacobian.Length)
            throw new ArgumentException($"Jacobian for '{Name}' has {jacobian.Length} values, expected {rows}×{d}.", nameof(jacobian));
        var variance = new double[d];
        PosteriorVariance(variance);
        var scaled = new double[d];
        var result = new double[rows * rows];
        for (int r = 0; r < rows; r++)
        {
            TensorPrimitives.Multiply(jacobian.Slice(r * d, d), variance, scaled);
            for (int c = 0; c <= r; c++) result[r * rows + c] = result[c * rows + r] = TensorPrimitives.Dot(scaled, jacobian.Slice(c * d, d));
        }
        return result;
    }

    /// <summary>Writes one draw θ* + z/√(N·F + λ) into <paramref name="destination"/>.</summary>
    public void Sample(GaussianRandom random, Span<double> destination)
    {
        ArgumentNullException.ThrowIfNull(random);
        CheckLength(destination.Length, nameof(destination));
        for (int k = 0; k < _mean.Length; k++) destination[k] = _mean[k] + random.NextStandardNormal() / Math.Sqrt(_curvature[k] + _priorPrecision);
    }

    private void CheckLength(int length, string name)
    {
        if (length != ParameterCount) throw new ArgumentException($"Vector for '{Name}' has length {length}, expected {ParameterCount}.", name);
    }
}
