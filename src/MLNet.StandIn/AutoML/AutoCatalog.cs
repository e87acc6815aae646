using Microsoft.ML.SearchSpace;

namespace Microsoft.ML.AutoML;

/// <summary>Adds <see cref="Auto"/> to <see cref="MLContext"/>.</summary>
public static class MLContextExtension
{
    /// <summary>The AutoML catalog of <paramref name="mlContext"/>.</summary>
    public static AutoCatalog Auto(this MLContext mlContext) => new(mlContext ?? throw new ArgumentNullException(nameof(mlContext)));
}

/// <summary>Creates sweepable estimators and experiments. The constructor is internal.</summary>
public sealed class AutoCatalog
{
    private readonly MLContext _context;

    internal AutoCatalog(MLContext context)
    {
        _context = context;
    }

    /// <summary>A sweepable estimator whose factory receives the parameter converted to <typeparamref name="T"/>.
    /// Pass a search space (ML.NET fails on null).</summary>
    public SweepableEstimator CreateSweepableEstimator<T>(Func<MLContext, T, IEstimator<ITransformer>> factory, SearchSpace<T>? ss = null)
        where T : class, new()
    {
        ArgumentNullException.ThrowIfNull(factory);
        ArgumentNullException.ThrowIfNull(ss, nameof(ss));
        return new SweepableEstimator((context, parameter) => factory(context, parameter.AsType<T>()), ss);
    }

    /// <summary>A new experiment on this context.</summary>
    public AutoMLExperiment CreateExperiment(AutoMLExperiment.AutoMLExperimentSettings? settings = null)
        => new(_context, settings ?? new AutoMLExperiment.AutoMLExperimentSettings());
}
