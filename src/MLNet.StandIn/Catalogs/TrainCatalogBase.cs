using Microsoft.ML.Data;

namespace Microsoft.ML;

/// <summary>Base of the task catalogs (multiclass, binary, regression). Constructors are private protected, as in ML.NET.</summary>
public abstract class TrainCatalogBase
{
    private protected TrainCatalogBase(MLContext context)
    {
        Context = context;
    }

    /// <summary>The owning context; internal, so an extension cannot reach it from the catalog (as in ML.NET).</summary>
    internal MLContext Context { get; }

    /// <summary>The result of one cross-validation fold. The constructor is internal.</summary>
    public sealed class CrossValidationResult<T>
        where T : class
    {
        /// <summary>The fold's metrics on its held-out part.</summary>
        public readonly T Metrics;

        /// <summary>The model trained on the other folds.</summary>
        public readonly ITransformer Model;

        /// <summary>The held-out part, scored by <see cref="Model"/>.</summary>
        public readonly IDataView ScoredHoldOutSet;

        /// <summary>The fold index.</summary>
        public readonly int Fold;

        internal CrossValidationResult(ITransformer model, T metrics, IDataView scores, int fold)
        {
            Model = model;
            Metrics = metrics;
            ScoredHoldOutSet = scores;
            Fold = fold;
        }
    }

    /// <summary>Base of the nested trainer catalogs that serve as targets of trainer extension methods.</summary>
    public abstract class CatalogInstantiatorBase
    {
        private protected CatalogInstantiatorBase(TrainCatalogBase owner)
        {
            Owner = owner;
        }

        internal TrainCatalogBase Owner { get; }
    }

    /// <summary>Splits, fits <paramref name="estimator"/> on each training part and scores each held-out part.</summary>
    private protected IReadOnlyList<(ITransformer Model, IDataView Scores, int Fold)> CrossValidateTrain(IDataView data, IEstimator<ITransformer> estimator,
        int numberOfFolds, string? samplingKeyColumnName, int? seed)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(estimator);
        var folds = Context.Data.CrossValidationSplit(data, numberOfFolds, samplingKeyColumnName, seed);
        var results = new (ITransformer, IDataView, int)[folds.Count];
        for (int i = 0; i < folds.Count; i++)
        {
            var model = estimator.Fit(folds[i].TrainSet);
            results[i] = (model, model.Transform(folds[i].TestSet), i);
        }
        return results;
    }
}
