namespace Microsoft.ML.Data;

/// <summary>Base of estimators that need no training: <see cref="Fit"/> checks the schema and returns the pre-built transformer.</summary>
public abstract class TrivialEstimator<TTransformer> : IEstimator<TTransformer>
    where TTransformer : class, ITransformer
{
    private protected readonly TTransformer Transformer;

    private protected TrivialEstimator(TTransformer transformer)
    {
        Transformer = transformer ?? throw new ArgumentNullException(nameof(transformer));
    }

    /// <summary>Checks that the transformer accepts <paramref name="input"/>'s schema and returns it.</summary>
    public TTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        Transformer.GetOutputSchema(input.Schema);
        return Transformer;
    }

    /// <summary>The output shape for <paramref name="inputSchema"/>.</summary>
    public abstract SchemaShape GetOutputSchema(SchemaShape inputSchema);
}
