namespace Microsoft.ML.Trainers;

/// <summary>An estimator that trains a model wrapped in a prediction transformer.</summary>
public interface ITrainerEstimator<out TTransformer, out TModel> : IEstimator<TTransformer>
    where TTransformer : IPredictionTransformer<TModel>
    where TModel : class
{
    /// <summary>What the trainer needs from its data.</summary>
    TrainerInfo Info { get; }
}
