using System.Numerics.Tensors;
using Microsoft.ML.Peft.LinearAlgebra;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// K-FAC Laplace posterior of one linear layer's weight W (out×in, row-major; a bias is an extra input column):
/// N(W*, P⁻¹) with precision P = N·(G ⊗ A) + λ·I, where G (out×out) and A (in×in) are the mean output-gradient and
/// input-activation factors and N the data count — laplace-torch's K-FAC convention (see
/// <see cref="KroneckerFactorAccumulator"/>). To apply a temperature T as laplace-torch does (H/T), pass N/T.
/// </summary>
/// <remarks>
/// <para>With G = Σ_i g_i·u_i·u_iᵀ and A = Σ_j a_j·v_j·v_jᵀ (either possibly low-rank, missing directions having
/// eigenvalue 0), P has eigenvectors u_i ⊗ v_j with eigenvalues h_ij + λ, h_ij = N·g_i·a_j, and λ on the rest. Hence
/// log det P = Σ_ij log(h_ij + λ) + (d − k_g·k_a)·log λ, and for any function φ of P,
/// φ(P)·vec(V) = φ(λ)·vec(V) + vec(U_gᵀ[(U_g·V·U_aᵀ) ∘ (φ(h + λ) − φ(λ))]·U_a), where U_g, U_a hold the
/// eigenvectors as rows. Covariance products (φ = 1/x), square roots for sampling (φ = 1/√x) and precision
/// products (φ = x) are all this one projection, costing O(k_g·out·in + k_g·k_a·in) instead of the O((out·in)³)
/// of the dense d×d matrix, which is never formed. The differences φ(h+λ) − φ(λ) are evaluated in cancellation-free
/// forms (e.g. −h/(λ(h+λ))).</para>
/// <para>The parameter vector is W flattened row-major (index o·in + i), so G ⊗ A acts as V ↦ G·V·A.</para>
/// </remarks>
public sealed class KfacLaplaceLayer : ILaplacePosteriorBlock
{
    private readonly double[] _mean;
    private readonly double[] _gRows, _aRows;   // eigenvectors as rows: k_g×out, k_a×in
    private readonly double[] _curvature;       // h_ij = N·g_i·a_j, k_g×k_a
    private readonly int _kg, _ka;
    private double _priorPrecision = 1;

    /// <summary>Creates the posterior from the MAP weights and the two factors' eigenbases.</summary>
    /// <param name="name">Layer name for messages (e.g. "layers.0.self_attn.q_proj.lora_A").</param>
    /// <param name="mean">W* row-major out×in (in includes the bias column when the input factor has one).</param>
    /// <param name="outputFactor">Eigenbasis of G (side out).</param>
    /// <param name="inputFactor">Eigenbasis of A (side in).</param>
    /// <param name="dataCount">N &gt; 0 multiplying G ⊗ A.</param>
    /// <param name="priorMean">θ₀ (out×in) or empty for 0.</param>
    public KfacLaplaceLayer(string name, ReadOnlySpan<double> mean, KroneckerFactorEigenbasis outputFactor, KroneckerFactorEigenbasis inputFactor,
        double dataCount, ReadOnlySpan<double> priorMean = default)
    {
        ArgumentNullException.ThrowIfNull(outputFactor);
        ArgumentNullException.ThrowIfNull(inputFactor);
        Name = name;
        OutputSize = outputFactor.Size;
        InputSize = inputFactor.Size;
        ParameterCount = checked(OutputSize * InputSize);
        if (mean.Length != ParameterCount)
            throw new ArgumentException($"Mean of K-FAC layer '{name}' has {mean.Length} values, expected out×in = {OutputSize}×{InputSize} from its factors.", nameof(mean));
        if (!priorMean.IsEmpty && priorMean.Length != ParameterCount)
            throw new ArgumentException($"Prior mean of K-FAC layer '{name}' has {priorMean.Length} values, expected {ParameterCount}.", nameof(priorMean));
        if (!(dataCount > 0) || !double.IsFinite(dataCount))
            throw new ArgumentOutOfRangeException(nameof(dataCount), dataCount, $"Data count of K-FAC layer '{name}' must be positive.");
        MatrixGuard.Finite(mean, InputSize, $"{name} mean");
        _mean = mean.ToArray();
        DataCount = dataCount;
        ScatterFromPriorMean = priorMean.IsEmpty ? TensorPrimitives.Dot<double>(mean, mean) : SquaredDistance(mean, priorMean);

        OutputFactor = outputFactor;
        InputFactor = inputFactor;
        _kg = outputFactor.Rank;
        _ka = inputFactor.Rank;
        _gRows = outputFactor.EigenvectorRows.ToArray();
        _aRows = inputFactor.EigenvectorRows.ToArray();
        _curvature = new double[_kg * _ka];
        for (int i = 0; i < _kg; i++)
        {
            TensorPrimitives.Multiply(inputFactor.Values, dataCount * outputFactor.Values[i], _curvature.AsSpan(i * _ka, _ka));
        }
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <summary>The eigenbasis of G this posterior was built from (kept so a fitted posterior can be saved and rebuilt exactly).</summary>
    internal KroneckerFactorEigenbasis OutputFactor { get; }

    /// <summary>The eigenbasis of A this posterior was built from.</summary>
    internal KroneckerFactorEigenbasis InputFactor { get; }

    /// <summary>out.</summary>
    public int OutputSize { get; }

    /// <summary>in (including a bias column if the input factor has one).</summary>
    public int InputSize { get; }

    /// <inheritdoc/>
    public int ParameterCount { get; }

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
    public PrecisionSpectrumTerms SpectrumTerms(double priorPrecision) =>
        PrecisionSpectrumTerms.FromSpectrum(_curvature, (long)ParameterCount - (long)_kg * _ka, priorPrecision, Name);

    /// <summary>log det P at the current <see cref="PriorPrecision"/>.</summary>
    public double LogDetPosteriorPrecision() => SpectrumTerms(_priorPrecision).LogDeterminant;

    /// <inheritdoc/>
    /// <remarks>result = Σ·v with Σ = P⁻¹ (v and result are out×in row-major; they may be the same span).</remarks>
    public void CovarianceTimes(ReadOnlySpan<double> v, Span<double> result)
    {
        Apply(v, result, 1 / _priorPrecision, SpectralDeltas(SpectralFunction.Inverse));
    }

    /// <summary>result = P·v = N·G·V·A + λ·V (for checks and Newton-type solvers).</summary>
    public void PrecisionTimes(ReadOnlySpan<double> v, Span<double> result) => Apply(v, result, _priorPrecision, _curvature);

    /// <summary>vᵀ·Σ·v without forming Σ: ‖v‖²/λ + Σ_ij ṽ_ij²·(1/(h_ij + λ) − 1/λ) with ṽ = U_g·V·U_aᵀ.</summary>
    public double CovarianceQuadraticForm(ReadOnlySpan<double> v)
    {
        CheckVector(v, nameof(v));
        double lambda = _priorPrecision;
        double[] t = ToEigenCoordinates(v);
        double sum = TensorPrimitives.Dot<double>(v, v) / lambda;
        for (int k = 0; k < t.Length; k++) sum -= t[k] * t[k] * _curvature[k] / (lambda * (_curvature[k] + lambda));
        return sum;
    }

    /// <summary>
    /// J·Σ·Jᵀ (rows×rows) for a Jacobian J whose rows are gradients of outputs (e.g. logits) with respect to this
    /// layer's weights (each row out×in flattened): the Gaussian covariance of those outputs under the linearised
    /// predictive.
    /// </summary>
    public double[] ProjectedCovariance(ReadOnlySpan<double> jacobian, int rows)
    {
        if ((long)rows * ParameterCount != jacobian.Length)
            throw new ArgumentException($"Jacobian for K-FAC layer '{Name}' has {jacobian.Length} values, expected {rows}×{ParameterCount}.", nameof(jacobian));
        double lambda = _priorPrecision;
        int k = _kg * _ka;
        var coordinates = new double[rows * k];
        var scaled = new double[rows * k];
        for (int r = 0; r < rows; r++)
        {
            ToEigenCoordinates(jacobian.Slice(r * ParameterCount, ParameterCount)).CopyTo(coordinates.AsSpan(r * k, k));
            for (int q = 0; q < k; q++) scaled[r * k + q] = -coordinates[r * k + q] * _curvature[q] / (lambda * (_curvature[q] + lambda));
        }
        var result = new double[rows * rows];
        for (int r = 0; r < rows; r++)
        {
            ReadOnlySpan<double> jr = jacobian.Slice(r * ParameterCount, ParameterCount);
            for (int c = 0; c <= r; c++)
            {
                double value = TensorPrimitives.Dot(jr, jacobian.Slice(c * ParameterCount, ParameterCount)) / lambda
                    + TensorPrimitives.Dot<double>(coordinates.AsSpan(r * k, k), scaled.AsSpan(c * k, k));
                result[r * rows + c] = result[c * rows + r] = value;
            }
        }
        return result;
    }

    /// <summary>Whether both factors keep their full eigenbasis (no low-rank truncation).</summary>
    internal bool IsFullRank => _kg == OutputSize && _ka == InputSize;

    private float[]? _gRowsF, _aRowsF, _scratchM, _scratchC;
    private double[]? _inverse;          // 1/(h + λ) for _inverseLambda
    private double _inverseLambda = double.NaN;

    /// <summary>
    /// vec(J)ᵀ·Σ·vec(J) for one Jacobian row J (out×in, float) of a full-rank layer, the hot path of the binary
    /// predictive: C = U_g·J·U_aᵀ by two small single-precision GEMMs, then Σ_ij C_ij²/(h_ij + λ), which has no
    /// cancellation (unlike ‖J‖²/λ + Σ C²·δ, needed only when a factor is low rank). Reuses scratch buffers: not
    /// thread safe (the predictor serialises calls).
    /// </summary>
    internal double JacobianVariance(ReadOnlySpan<float> jacobian)
    {
        if (!IsFullRank) throw new InvalidOperationException($"K-FAC layer '{Name}' has a low-rank factor; use ProjectedCovariance");
        if (jacobian.Length != ParameterCount)
            throw new ArgumentException($"Jacobian for K-FAC layer '{Name}' has {jacobian.Length} values, expected {ParameterCount}.", nameof(jacobian));
        _gRowsF ??= Array.ConvertAll(_gRows, v => (float)v);
        _aRowsF ??= Array.ConvertAll(_aRows, v => (float)v);
        _scratchM ??= new float[OutputSize * _ka];
        _scratchC ??= new float[_kg * _ka];
        var inverse = _inverse ??= new double[_curvature.Length];
        if (_inverseLambda != _priorPrecision)
        {
            for (int q = 0; q < _curvature.Length; q++) inverse[q] = 1 / (_curvature[q] + _priorPrecision);
            _inverseLambda = _priorPrecision;
        }
        // M = J·U_aᵀ (out×k_a), C = U_g·M (k_g×k_a).
        Kernels.Gemm.Sgemm(false, true, OutputSize, _ka, InputSize, 1f, jacobian, InputSize, _aRowsF, InputSize, 0f, _scratchM, _ka);
        Kernels.Gemm.Sgemm(false, false, _kg, _ka, OutputSize, 1f, _gRowsF, OutputSize, _scratchM, _ka, 0f, _scratchC, _ka);
        double variance = 0;
        for (int q = 0; q < _scratchC.Length; q++)
        {
            double c = _scratchC[q];
            variance += c * c * inverse[q];
        }
        return variance;
    }

    /// <summary>
    /// Covariance (out×out) of the layer output f = W·x for an input x (length in; include the trailing 1 when the
    /// layer has a bias column): Cov = ‖x‖²/λ·I + U_gᵀ·diag(c)·U_g with c_i = Σ_j x̃_j²·(1/(h_ij + λ) − 1/λ), x̃ = U_a·x.
    /// </summary>
    public double[] LinearOutputCovariance(ReadOnlySpan<double> input)
    {
        double[] c = OutputEigenWeights(input, out double isotropic);
        var cov = new double[OutputSize * OutputSize];
        for (int o = 0; o < OutputSize; o++) cov[o * OutputSize + o] = isotropic;
        for (int i = 0; i < _kg; i++)
        {
            ReadOnlySpan<double> u = _gRows.AsSpan(i * OutputSize, OutputSize);
            for (int o = 0; o < OutputSize; o++)
            {
                Span<double> row = cov.AsSpan(o * OutputSize, OutputSize);
                TensorPrimitives.MultiplyAdd(u, c[i] * u[o], row, row);
            }
        }
        return cov;
    }

    /// <summary>Variance of dᵀ·(W·x) for an input x (length in) and an output direction d (length out), in O(k_a·in + k_g·out).</summary>
    public double LinearOutputVariance(ReadOnlySpan<double> input, ReadOnlySpan<double> outputDirection)
    {
        if (outputDirection.Length != OutputSize)
            throw new ArgumentException($"Output direction for K-FAC layer '{Name}' has length {outputDirection.Length}, expected {OutputSize}.", nameof(outputDirection));
        double[] c = OutputEigenWeights(input, out double isotropic);
        double variance = isotropic * TensorPrimitives.Dot(outputDirection, outputDirection);
        for (int i = 0; i < _kg; i++)
        {
            double projection = TensorPrimitives.Dot(_gRows.AsSpan(i * OutputSize, OutputSize), outputDirection);
            variance += c[i] * projection * projection;
        }
        return variance;
    }

    /// <summary>result = Σ^{1/2}·z (the symmetric square root): maps N(0, I) draws to N(0, Σ).</summary>
    public void CovarianceSquareRootTimes(ReadOnlySpan<double> z, Span<double> result)
        => Apply(z, result, 1 / Math.Sqrt(_priorPrecision), SpectralDeltas(SpectralFunction.InverseSquareRoot));

    /// <summary>Writes one posterior draw W = W* + Σ^{1/2}·z, z ~ N(0, I), into <paramref name="destination"/> (out×in).</summary>
    public void Sample(GaussianRandom random, Span<double> destination)
    {
        ArgumentNullException.ThrowIfNull(random);
        CheckVector(destination, nameof(destination));
        var z = new double[ParameterCount];
        random.FillStandardNormal(z);
        CovarianceSquareRootTimes(z, destination);
        TensorPrimitives.Add(destination, _mean, destination);
    }

    /// <summary>result = s·v + U_gᵀ[(U_g·V·U_aᵀ) ∘ δ(h)]·U_a, the spectral form shared by every operator above.</summary>
    private void Apply(ReadOnlySpan<double> v, Span<double> result, double isotropic, ReadOnlySpan<double> delta)
    {
        CheckVector(v, nameof(v));
        CheckVector(result, nameof(result));
        double[] t = ToEigenCoordinates(v);
        TensorPrimitives.Multiply(t, delta, t);
        // Y = T·U_a (k_g×in), then back = U_gᵀ·Y (out×in).
        double[] y = DenseMatrix.Multiply(t, _kg, _ka, _aRows, InputSize);
        double[] back = DenseMatrix.MultiplyTransposeA(_gRows, _kg, OutputSize, y, InputSize);
        TensorPrimitives.Multiply(v, isotropic, result);
        TensorPrimitives.Add(result, back, result);
    }

    private enum SpectralFunction
    {
        Inverse,
        InverseSquareRoot,
    }

    /// <summary>φ(h + λ) − φ(λ) for every curvature eigenvalue h, in cancellation-free form.</summary>
    private double[] SpectralDeltas(SpectralFunction function)
    {
        double lambda = _priorPrecision, rootLambda = Math.Sqrt(lambda);
        var delta = new double[_curvature.Length];
        for (int k = 0; k < delta.Length; k++)
        {
            double h = _curvature[k];
            if (function == SpectralFunction.Inverse)
            {
                delta[k] = -h / (lambda * (h + lambda)); // 1/(h+λ) − 1/λ
            }
            else
            {
                double root = Math.Sqrt(h + lambda); // 1/√(h+λ) − 1/√λ
                delta[k] = -h / (rootLambda * root * (root + rootLambda));
            }
        }
        return delta;
    }

    /// <summary>ṽ = U_g·V·U_aᵀ (k_g×k_a) for V out×in.</summary>
    private double[] ToEigenCoordinates(ReadOnlySpan<double> v)
    {
        double[] m = DenseMatrix.MultiplyTransposeB(v, OutputSize, InputSize, _aRows, _ka); // V·U_aᵀ: out×k_a
        return DenseMatrix.Multiply(_gRows, _kg, OutputSize, m, _ka);
    }

    private double[] OutputEigenWeights(ReadOnlySpan<double> input, out double isotropic)
    {
        if (input.Length != InputSize)
            throw new ArgumentException($"Input for K-FAC layer '{Name}' has length {input.Length}, expected {InputSize}.", nameof(input));
        double lambda = _priorPrecision;
        var projected = new double[_ka];
        for (int j = 0; j < _ka; j++) projected[j] = TensorPrimitives.Dot(_aRows.AsSpan(j * InputSize, InputSize), input);
        var c = new double[_kg];
        for (int i = 0; i < _kg; i++)
        {
            double sum = 0;
            for (int j = 0; j < _ka; j++)
            {
                double h = _curvature[i * _ka + j];
                sum -= projected[j] * projected[j] * h / (lambda * (h + lambda));
            }
            c[i] = sum;
        }
        isotropic = TensorPrimitives.Dot(input, input) / lambda;
        return c;
    }

    private void CheckVector(ReadOnlySpan<double> v, string name)
    {
        if (v.Length != ParameterCount)
            throw new ArgumentException($"Vector for K-FAC layer '{Name}' has length {v.Length}, expected out×in = {ParameterCount}.", name);
    }

    private static double SquaredDistance(ReadOnlySpan<double> a, ReadOnlySpan<double> b)
    {
        double sum = 0;
        for (int i = 0; i < a.Length; i++) sum += (a[i] - b[i]) * (a[i] - b[i]);
        return sum;
    }
}
