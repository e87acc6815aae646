using Microsoft.ML.SearchSpace;

namespace Microsoft.ML.AutoML;

/// <summary>Proposes uniformly random points of the feature space [0, 1]^d (seeded).</summary>
internal sealed class RandomSearchTuner : ITuner
{
    private readonly SearchSpace.SearchSpace _searchSpace;
    private readonly Random _random;

    public RandomSearchTuner(SearchSpace.SearchSpace searchSpace, int? seed)
    {
        _searchSpace = searchSpace;
        _random = seed.HasValue ? new Random(seed.Value) : new Random();
    }

    public Parameter Propose(TrialSettings settings)
    {
        var feature = new double[_searchSpace.FeatureSpaceDim];
        for (int i = 0; i < feature.Length; i++)
            feature[i] = _random.NextDouble();
        return _searchSpace.SampleFromFeatureSpace(feature);
    }

    public void Update(TrialResult result)
    {
    }
}

/// <summary>
/// Proposes the grid of the feature space in lexicographic order (first dimension slowest) and starts over when it is
/// exhausted. A continuous dimension takes <c>step</c> values i/step (i = 0..step−1); a choice of n takes its n values i/n.
/// </summary>
internal sealed class GridSearchTuner : ITuner
{
    private readonly SearchSpace.SearchSpace _searchSpace;
    private readonly double[][] _axes;
    private readonly int[] _position;
    private bool _exhausted;

    public GridSearchTuner(SearchSpace.SearchSpace searchSpace, int step)
    {
        if (step <= 0)
            throw new ArgumentOutOfRangeException(nameof(step), $"step must be positive, got {step}.");
        _searchSpace = searchSpace;
        _axes = searchSpace.Step.Select(s => s ?? step).Select(n => Enumerable.Range(0, n).Select(i => i * 1.0 / n).ToArray()).ToArray();
        _position = new int[_axes.Length];
    }

    public Parameter Propose(TrialSettings settings)
    {
        if (_exhausted)
        {
            Array.Clear(_position);
            _exhausted = false;
        }
        var feature = _axes.Select((axis, d) => axis[_position[d]]).ToArray();
        Advance();
        return _searchSpace.SampleFromFeatureSpace(feature);
    }

    private void Advance()
    {
        for (int d = _axes.Length - 1; d >= 0; d--)
        {
            if (++_position[d] < _axes[d].Length)
                return;
            _position[d] = 0;
        }
        _exhausted = true;
    }

    public void Update(TrialResult result)
    {
    }
}

/// <summary>
/// Cost-frugal optimisation (CFO, Wu, Wang &amp; Huang, AAAI 2021): a randomized local search (FLOW²) that starts from
/// the search space's default — the cheap configuration — and moves only on improvement. Around the incumbent it tries
/// a random direction u of length δ on the sphere, then −u; after 2d unsuccessful proposals δ shrinks by 1.5 (every
/// two further failures), each improvement grows it by 1.5 (capped at √d). When δ falls below 1e-4 the search restarts
/// from a random point of the box spanned by the starting points seen so far. It minimises <see cref="TrialResult.Loss"/>.
/// </summary>
internal sealed class CostFrugalTuner : ITuner
{
    private const double InitialStep = 0.1;
    private const double StepLowerBound = 1e-4;
    private const double ConvergeSpeed = 1.5;

    private readonly SearchSpace.SearchSpace _searchSpace;
    private readonly Random _random;
    private readonly Dictionary<int, double[]> _proposed = new();
    private readonly int _dim;
    private readonly double _stepUpperBound;
    private readonly double[] _boxMin;
    private readonly double[] _boxMax;
    private double[]? _incumbent;
    private double _incumbentLoss = double.PositiveInfinity;
    private double[]? _directionTried;
    private double _step;
    private int _allowedBeforeShrink;
    private double[]? _restartPoint;

    public CostFrugalTuner(SearchSpace.SearchSpace searchSpace, int? seed)
    {
        _searchSpace = searchSpace;
        _random = seed.HasValue ? new Random(seed.Value) : new Random();
        _dim = searchSpace.FeatureSpaceDim;
        _stepUpperBound = Math.Sqrt(Math.Max(_dim, 1));
        _boxMin = searchSpace.Default.ToArray();
        _boxMax = searchSpace.Default.ToArray();
        _restartPoint = searchSpace.Default.ToArray();
        ResetStep();
    }

    /// <summary>Whether the current local search has converged (its step fell below the lower bound).</summary>
    internal bool IsConverged => _step < StepLowerBound;

    internal double Step => _step;

    private void ResetStep()
    {
        _step = Math.Min(InitialStep * Math.Sqrt(Math.Max(_dim, 1)), _stepUpperBound);
        _allowedBeforeShrink = 2 * _dim;
        _directionTried = null;
    }

    public Parameter Propose(TrialSettings settings)
    {
        double[] point;
        if (_dim == 0)
        {
            point = Array.Empty<double>();
        }
        else if (_incumbent == null)
        {
            point = _restartPoint!;
        }
        else if (_directionTried != null)
        {
            point = Project(_incumbent.Zip(_directionTried, (x, u) => x - u).ToArray());
            _directionTried = null;
        }
        else
        {
            _directionTried = RandomDirection();
            point = Project(_incumbent.Zip(_directionTried, (x, u) => x + u).ToArray());
        }
        _allowedBeforeShrink--;
        _proposed[settings.TrialId] = point;
        return _searchSpace.SampleFromFeatureSpace(point);
    }

    public void Update(TrialResult result)
    {
        ArgumentNullException.ThrowIfNull(result);
        if (!_proposed.Remove(result.TrialSettings.TrialId, out var point))
            return;
        double loss = double.IsNaN(result.Loss) ? double.MaxValue : result.Loss;
        if (_incumbent == null)
        {
            _incumbent = point;
            _incumbentLoss = loss;
            _restartPoint = null;
            ResetStep();
            return;
        }
        if (loss < _incumbentLoss)
        {
            _incumbent = point;
            _incumbentLoss = loss;
            _step = Math.Min(_step * ConvergeSpeed, _stepUpperBound);
            _allowedBeforeShrink = 2 * _dim;
            _directionTried = null;
            return;
        }
        if (_allowedBeforeShrink <= 0)
        {
            _allowedBeforeShrink = 2;
            _step /= ConvergeSpeed;
        }
        if (IsConverged && _dim > 0)
            Restart();
    }

    private void Restart()
    {
        var start = new double[_dim];
        for (int i = 0; i < _dim; i++)
            start[i] = _boxMin[i] + _random.NextDouble() * (_boxMax[i] - _boxMin[i]);
        for (int i = 0; i < _dim; i++)
        {
            _boxMin[i] = Math.Min(_boxMin[i], _incumbent![i]);
            _boxMax[i] = Math.Max(_boxMax[i], _incumbent[i]);
        }
        _incumbent = null;
        _incumbentLoss = double.PositiveInfinity;
        _restartPoint = start;
        ResetStep();
    }

    private double[] RandomDirection()
    {
        var u = new double[_dim];
        double norm = 0;
        while (norm == 0)
        {
            for (int i = 0; i < _dim; i++)
            {
                // Box-Muller: a standard normal per coordinate makes the direction uniform on the sphere.
                double r = Math.Sqrt(-2 * Math.Log(1 - _random.NextDouble()));
                u[i] = r * Math.Cos(2 * Math.PI * _random.NextDouble());
            }
            norm = Math.Sqrt(u.Sum(x => x * x));
        }
        for (int i = 0; i < _dim; i++)
            u[i] *= _step / norm;
        return u;
    }

    private static double[] Project(double[] point) => point.Select(x => x < 0 ? 0 : x > 1 ? 0.99999999 : x).ToArray();
}
