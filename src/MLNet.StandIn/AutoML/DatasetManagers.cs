namespace Microsoft.ML.AutoML;

/// <summary>Marker of the experiment's data source.</summary>
public interface IDatasetManager
{
}

/// <summary>Serves a training and a validation set.</summary>
public interface ITrainValidateDatasetManager : IDatasetManager
{
    /// <summary>The training set for a trial.</summary>
    IDataView LoadTrainDataset(MLContext context, TrialSettings? settings);

    /// <summary>The validation set for a trial.</summary>
    IDataView LoadValidateDataset(MLContext context, TrialSettings? settings);
}

/// <summary>Serves a dataset to cross-validate on.</summary>
public interface ICrossValidateDatasetManager : IDatasetManager
{
    /// <summary>The number of folds.</summary>
    int Fold { get; set; }

    /// <summary>The dataset.</summary>
    IDataView Dataset { get; set; }

    /// <summary>The column whose equal values stay in one fold.</summary>
    string? SamplingKeyColumnName { get; set; }
}

internal sealed class TrainValidateDatasetManager : ITrainValidateDatasetManager
{
    private readonly IDataView _train;
    private readonly IDataView _validate;

    public TrainValidateDatasetManager(IDataView train, IDataView validate)
    {
        _train = train ?? throw new ArgumentNullException(nameof(train));
        _validate = validate ?? throw new ArgumentNullException(nameof(validate));
    }

    public IDataView LoadTrainDataset(MLContext context, TrialSettings? settings) => _train;

    public IDataView LoadValidateDataset(MLContext context, TrialSettings? settings) => _validate;
}

internal sealed class CrossValidateDatasetManager : ICrossValidateDatasetManager
{
    public CrossValidateDatasetManager(IDataView dataset, int fold, string? samplingKeyColumnName)
    {
        Dataset = dataset ?? throw new ArgumentNullException(nameof(dataset));
        Fold = fold >= 2 ? fold : throw new ArgumentOutOfRangeException(nameof(fold), $"fold must be at least 2, got {fold}.");
        SamplingKeyColumnName = samplingKeyColumnName;
    }

    public int Fold { get; set; }

    public IDataView Dataset { get; set; }

    public string? SamplingKeyColumnName { get; set; }
}
