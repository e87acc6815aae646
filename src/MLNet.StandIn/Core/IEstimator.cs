namespace Microsoft.ML;

/// <summary>A learning step: <see cref="Fit"/> trains on data and returns a transformer.</summary>
public interface IEstimator<out TTransformer>
    where TTransformer : ITransformer
{
    /// <summary>Trains on <paramref name="input"/> and returns the fitted transformer.</summary>
    TTransformer Fit(IDataView input);

    /// <summary>Propagates a schema without data; throws when the input shape does not fit.</summary>
    SchemaShape GetOutputSchema(SchemaShape inputSchema);
}

/// <summary>A fitted, data-independent mapping from one <see cref="IDataView"/> to another.</summary>
public interface ITransformer : ICanSaveModel
{
    /// <summary>The schema <see cref="Transform"/> would produce for <paramref name="inputSchema"/>.</summary>
    DataViewSchema GetOutputSchema(DataViewSchema inputSchema);

    /// <summary>Lazily applies the transformation (no pass over the data happens here).</summary>
    IDataView Transform(IDataView input);

    /// <summary>Whether the transformer maps rows one to one; required by the prediction engine.</summary>
    bool IsRowToRowMapper { get; }

    /// <summary>A row mapper bound to <paramref name="inputSchema"/>.</summary>
    Data.IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema);
}

/// <summary>Loads an <see cref="IDataView"/> from a source.</summary>
public interface IDataLoader<in TSource> : ICanSaveModel
{
    /// <summary>Loads data from <paramref name="input"/>.</summary>
    IDataView Load(TSource input);

    /// <summary>The schema of the loaded data.</summary>
    DataViewSchema GetOutputSchema();
}

/// <summary>Trains a data loader.</summary>
public interface IDataLoaderEstimator<in TSource, out TLoader>
    where TLoader : IDataLoader<TSource>
{
    /// <summary>Trains the loader.</summary>
    TLoader Fit(TSource input);

    /// <summary>The shape of the loaded data.</summary>
    SchemaShape GetOutputSchema();
}

/// <summary>A component that can be written into a model file.</summary>
public interface ICanSaveModel
{
    /// <summary>Writes the component into <paramref name="ctx"/>.</summary>
    void Save(ModelSaveContext ctx);
}
