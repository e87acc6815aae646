using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

namespace Microsoft.ML;

/// <summary>Append and related helpers to build estimator and transformer chains.</summary>
public static class LearningPipelineExtensions
{
    /// <summary>A chain of <paramref name="start"/> followed by <paramref name="estimator"/> (flattened when <paramref name="start"/> is a chain of ITransformer).</summary>
    public static EstimatorChain<TTrans> Append<TTrans>(this IEstimator<ITransformer> start, IEstimator<TTrans> estimator,
        TransformerScope scope = TransformerScope.Everything)
        where TTrans : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(estimator);
        if (start is EstimatorChain<ITransformer> chain)
            return chain.Append(estimator, scope);
        return new EstimatorChain<ITransformer>().Append(start).Append(estimator, scope);
    }

    /// <summary>A chain of the fitted <paramref name="start"/> followed by <paramref name="transformer"/>.</summary>
    public static TransformerChain<TTrans> Append<TTrans>(this ITransformer start, TTrans transformer)
        where TTrans : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(start);
        ArgumentNullException.ThrowIfNull(transformer);
        return new TransformerChain<TTrans>(start, transformer);
    }

    /// <summary>A chain that caches the data in memory after <paramref name="start"/>.</summary>
    public static EstimatorChain<TTrans> AppendCacheCheckpoint<TTrans>(this IEstimator<TTrans> start, IHostEnvironment env)
        where TTrans : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(start);
        return new EstimatorChain<TTrans>().Append(start).AppendCacheCheckpoint(env);
    }

    /// <summary>An estimator that calls <paramref name="onFit"/> with the transformer each time it is fitted.</summary>
    public static IEstimator<TTransformer> WithOnFitDelegate<TTransformer>(this IEstimator<TTransformer> estimator, Action<TTransformer> onFit)
        where TTransformer : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(estimator);
        ArgumentNullException.ThrowIfNull(onFit);
        return new OnFitEstimator<TTransformer>(estimator, onFit);
    }

    private sealed class OnFitEstimator<TTransformer> : IEstimator<TTransformer>
        where TTransformer : class, ITransformer
    {
        private readonly IEstimator<TTransformer> _inner;
        private readonly Action<TTransformer> _onFit;

        public OnFitEstimator(IEstimator<TTransformer> inner, Action<TTransformer> onFit)
        {
            _inner = inner;
            _onFit = onFit;
        }

        public TTransformer Fit(IDataView input)
        {
            var transformer = _inner.Fit(input);
            _onFit(transformer);
            return transformer;
        }

        public SchemaShape GetOutputSchema(SchemaShape inputSchema) => _inner.GetOutputSchema(inputSchema);
    }
}
