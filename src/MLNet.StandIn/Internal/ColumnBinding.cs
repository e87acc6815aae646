namespace Microsoft.ML.Internal;

/// <summary>
/// A stand-in transformer bound to an input schema: the columns it adds and how to compute them from an input row.
/// The output schema is the input columns followed by the added ones (an added column hides an input column of the
/// same name), which is how ML.NET's row-to-row transformers behave.
/// </summary>
internal abstract class ColumnBinding
{
    protected ColumnBinding(DataViewSchema inputSchema)
    {
        InputSchema = inputSchema ?? throw new ArgumentNullException(nameof(inputSchema));
    }

    public DataViewSchema InputSchema { get; }

    /// <summary>The columns added after the input columns.</summary>
    public abstract IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

    /// <summary>The input column indices that added column <paramref name="addedIndex"/> reads.</summary>
    public abstract IEnumerable<int> GetDependencies(int addedIndex);

    /// <summary>The getter (a <c>ValueGetter&lt;RawType&gt;</c>) of added column <paramref name="addedIndex"/> over <paramref name="input"/>.</summary>
    public abstract Delegate MakeGetter(DataViewRow input, int addedIndex);

    private DataViewSchema? _outputSchema;

    public DataViewSchema OutputSchema => _outputSchema ??= BuildOutputSchema();

    private DataViewSchema BuildOutputSchema()
    {
        var builder = new DataViewSchema.Builder();
        builder.AddColumns(InputSchema);
        builder.AddColumns(AddedColumns);
        return builder.ToSchema();
    }
}
