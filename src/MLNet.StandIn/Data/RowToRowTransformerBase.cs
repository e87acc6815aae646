using Microsoft.ML.Internal;

namespace Microsoft.ML.Data;

/// <summary>
/// Base of transformers that add columns computed row by row and keep the input columns. Its constructor and hooks are
/// private protected, as in ML.NET: third-party transformers implement <see cref="ITransformer"/> directly.
/// </summary>
public abstract class RowToRowTransformerBase : ITransformer
{
    private protected RowToRowTransformerBase()
    {
    }

    /// <summary>Binds the transformer to an input schema (throws when the schema does not fit).</summary>
    private protected abstract ColumnBinding Bind(DataViewSchema inputSchema);

    /// <summary>Writes the transformer into the stand-in model format.</summary>
    private protected abstract PersistedComponent Persist();

    void ICanSaveModel.Save(ModelSaveContext ctx)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ctx.Written = Persist();
    }

    bool ITransformer.IsRowToRowMapper => true;

    IRowToRowMapper ITransformer.GetRowToRowMapper(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return new BoundRowMapper(Bind(inputSchema));
    }

    /// <summary>The input columns followed by the added columns.</summary>
    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        return Bind(inputSchema).OutputSchema;
    }

    /// <summary>Lazily adds the columns to <paramref name="input"/>.</summary>
    public IDataView Transform(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return new MappedDataView(input, Bind(input.Schema));
    }
}

/// <summary>Base of transformers that map each input column to one output column.</summary>
public abstract class OneToOneTransformerBase : RowToRowTransformerBase
{
    private protected readonly (string outputColumnName, string inputColumnName)[] ColumnPairs;

    private protected OneToOneTransformerBase((string outputColumnName, string inputColumnName)[] columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        if (columns.Length == 0)
            throw new ArgumentException("At least one column pair is required.", nameof(columns));
        foreach (var (output, input) in columns)
        {
            ArgumentException.ThrowIfNullOrEmpty(output, nameof(columns));
            ArgumentException.ThrowIfNullOrEmpty(input, nameof(columns));
        }
        ColumnPairs = columns;
    }
}
