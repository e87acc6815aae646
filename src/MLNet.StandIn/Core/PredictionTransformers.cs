using Microsoft.ML.Data;

namespace Microsoft.ML;

/// <summary>A transformer that wraps a trained model (the predictor) of type <typeparamref name="TModel"/>.</summary>
public interface IPredictionTransformer<out TModel> : ITransformer
    where TModel : class
{
    /// <summary>The trained model.</summary>
    TModel Model { get; }
}

/// <summary>A prediction transformer whose model reads a single feature column.</summary>
public interface ISingleFeaturePredictionTransformer<out TModel> : IPredictionTransformer<TModel>
    where TModel : class
{
    /// <summary>The name of the feature column.</summary>
    string FeatureColumnName { get; }

    /// <summary>The type of the feature column.</summary>
    DataViewType FeatureColumnType { get; }
}

/// <summary>Describes what a trainer needs from its data. The constructor is internal, as in ML.NET.</summary>
public sealed class TrainerInfo
{
    internal TrainerInfo(bool normalization = true, bool caching = true)
    {
        NeedNormalization = normalization;
        WantCaching = caching;
    }

    /// <summary>Whether the trainer needs normalized features.</summary>
    public bool NeedNormalization { get; }

    /// <summary>Whether the trainer benefits from cached data.</summary>
    public bool WantCaching { get; }
}
