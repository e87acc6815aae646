using Microsoft.ML.SearchSpace;

namespace Microsoft.ML.AutoML;

/// <summary>Base of sweepable estimators: the parameter they were last built with.</summary>
public class Estimator
{
    /// <summary>Creates an estimator description.</summary>
    protected Estimator()
    {
    }

    /// <summary>The current parameter.</summary>
    public Parameter Parameter { get; set; } = Parameter.CreateNestedParameter();
}

/// <summary>Something with a search space.</summary>
public interface ISweepable
{
    /// <summary>The search space.</summary>
    SearchSpace.SearchSpace SearchSpace { get; }
}

/// <summary>Something that builds a <typeparamref name="T"/> from a parameter of its search space.</summary>
public interface ISweepable<out T> : ISweepable
{
    /// <summary>Builds the object for <paramref name="parameter"/>.</summary>
    T BuildFromOption(MLContext context, Parameter parameter);
}

/// <summary>An estimator factory over a search space.</summary>
public class SweepableEstimator : Estimator, ISweepable<IEstimator<ITransformer>>
{
    private readonly Func<MLContext, Parameter, IEstimator<ITransformer>>? _factory;

    /// <summary>An estimator built by <paramref name="factory"/> from parameters of <paramref name="ss"/>; the current
    /// parameter starts at the search space's default.</summary>
    public SweepableEstimator(Func<MLContext, Parameter, IEstimator<ITransformer>> factory, SearchSpace.SearchSpace ss)
    {
        _factory = factory ?? throw new ArgumentNullException(nameof(factory));
        SearchSpace = ss ?? throw new ArgumentNullException(nameof(ss));
        Parameter = ss.SampleFromFeatureSpace(ss.Default);
    }

    /// <summary>For derived classes that override <see cref="BuildFromOption"/>.</summary>
    protected SweepableEstimator()
    {
        SearchSpace = new SearchSpace.SearchSpace();
    }

    /// <summary>Builds the estimator for <paramref name="param"/> (and records it as the current parameter).</summary>
    public virtual IEstimator<ITransformer> BuildFromOption(MLContext context, Parameter param)
    {
        if (_factory == null)
            throw new InvalidOperationException($"{GetType().Name} has no factory; override BuildFromOption.");
        Parameter = param;
        return _factory(context, param);
    }

    /// <summary>The search space.</summary>
    public SearchSpace.SearchSpace SearchSpace { get; set; }

    /// <summary>Wraps a plain estimator (empty search space).</summary>
    internal static SweepableEstimator Wrap(IEstimator<ITransformer> estimator)
    {
        ArgumentNullException.ThrowIfNull(estimator);
        return new SweepableEstimator((_, _) => estimator, new SearchSpace.SearchSpace());
    }
}
