using Microsoft.ML.Internal;
using Microsoft.ML.Runtime;

namespace Microsoft.ML.Data;

/// <summary>
/// A sequence of estimators. <see cref="Fit"/> first checks the whole chain's schema propagation, then fits each estimator
/// on the output of the previous transformers, and returns the <see cref="TransformerChain{TLastTransformer}"/>.
/// </summary>
public sealed class EstimatorChain<TLastTransformer> : IEstimator<TransformerChain<TLastTransformer>>
    where TLastTransformer : class, ITransformer
{
    private readonly IEstimator<ITransformer>[] _estimators;
    private readonly TransformerScope[] _scopes;
    private readonly bool[] _needCacheAfter;

    /// <summary>The last estimator (null for an empty chain).</summary>
    public readonly IEstimator<TLastTransformer> LastEstimator;

    /// <summary>An empty chain.</summary>
    public EstimatorChain()
    {
        _estimators = Array.Empty<IEstimator<ITransformer>>();
        _scopes = Array.Empty<TransformerScope>();
        _needCacheAfter = Array.Empty<bool>();
        LastEstimator = null!;
    }

    private EstimatorChain(IEstimator<ITransformer>[] estimators, TransformerScope[] scopes, bool[] needCacheAfter)
    {
        _estimators = estimators;
        _scopes = scopes;
        _needCacheAfter = needCacheAfter;
        LastEstimator = estimators.Length == 0 ? null! : (IEstimator<TLastTransformer>)estimators[^1];
    }

    /// <summary>Checks the chain against the input's schema, then fits every estimator in turn.</summary>
    public TransformerChain<TLastTransformer> Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        GetOutputSchema(SchemaShape.Create(input.Schema));
        var current = input;
        var transformers = new ITransformer[_estimators.Length];
        for (int i = 0; i < _estimators.Length; i++)
        {
            transformers[i] = _estimators[i].Fit(current);
            current = transformers[i].Transform(current);
            if (_needCacheAfter[i] && i < _estimators.Length - 1)
                current = new CachedDataView(current);
        }
        return new TransformerChain<TLastTransformer>(transformers, _scopes);
    }

    /// <summary>Folds every estimator's <see cref="IEstimator{TTransformer}.GetOutputSchema"/>.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var shape = inputSchema;
        foreach (var estimator in _estimators)
            shape = estimator.GetOutputSchema(shape);
        return shape;
    }

    /// <summary>A new chain with <paramref name="estimator"/> appended.</summary>
    public EstimatorChain<TNewTrans> Append<TNewTrans>(IEstimator<TNewTrans> estimator, TransformerScope scope = TransformerScope.Everything)
        where TNewTrans : class, ITransformer
    {
        ArgumentNullException.ThrowIfNull(estimator);
        return new EstimatorChain<TNewTrans>(_estimators.Append(estimator).ToArray(), _scopes.Append(scope).ToArray(), _needCacheAfter.Append(false).ToArray());
    }

    /// <summary>A new chain whose data is cached in memory after the current last estimator.</summary>
    public EstimatorChain<TLastTransformer> AppendCacheCheckpoint(IHostEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        if (_estimators.Length == 0 || _needCacheAfter[^1])
            return this;
        var cache = (bool[])_needCacheAfter.Clone();
        cache[^1] = true;
        return new EstimatorChain<TLastTransformer>(_estimators, _scopes, cache);
    }
}
