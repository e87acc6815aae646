using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML;

/// <summary>Options of a prediction engine.</summary>
public sealed class PredictionEngineOptions
{
    /// <summary>Whether output members without a matching column are ignored (otherwise an error).</summary>
    public bool IgnoreMissingColumns = true;

    /// <summary>Overrides the input schema mapping of the source type.</summary>
    public SchemaDefinition? InputSchemaDefinition;

    /// <summary>Overrides the output schema mapping of the destination type.</summary>
    public SchemaDefinition? OutputSchemaDefinition;

    /// <summary>Whether disposing the engine disposes the transformer.</summary>
    public bool OwnsTransformer = true;
}

/// <summary>
/// Runs single examples through a transformer: builds one input row from a <typeparamref name="TSrc"/> object, maps it
/// through the transformer's row-to-row mapper and copies the output columns into a <typeparamref name="TDst"/> object.
/// </summary>
public abstract class PredictionEngineBase<TSrc, TDst> : IDisposable
    where TSrc : class
    where TDst : class, new()
{
    private readonly ITransformer _transformer;
    private readonly bool _ownsTransformer;
    private readonly SingleObjectRow<TSrc> _inputRow;
    private readonly DataViewRow _outputRow;
    private readonly Action<TDst>[] _assigners;
    private bool _disposed;

    private protected PredictionEngineBase(ITransformer transformer, PredictionEngineOptions options)
    {
        _transformer = transformer;
        _ownsTransformer = options.OwnsTransformer;
        if (!transformer.IsRowToRowMapper)
            throw new ArgumentException("Must be a row to row mapper", nameof(transformer));
        var inputDefinition = options.InputSchemaDefinition ?? SchemaDefinition.Create(typeof(TSrc), SchemaDefinition.Direction.Read);
        var (inputSchema, members) = EnumerableDataView<TSrc>.BuildSchema(typeof(TSrc), inputDefinition);
        _inputRow = new SingleObjectRow<TSrc>(inputSchema, members);
        var mapper = transformer.GetRowToRowMapper(inputSchema);
        OutputSchema = mapper.OutputSchema;

        var outputDefinition = options.OutputSchemaDefinition ?? SchemaDefinition.Create(typeof(TDst), SchemaDefinition.Direction.Write);
        var bindings = new List<(DataViewSchema.Column Column, System.Reflection.MemberInfo Member)>();
        foreach (var column in outputDefinition)
        {
            var outputColumn = OutputSchema.GetColumnOrNull(column.ColumnName);
            if (outputColumn == null)
            {
                if (options.IgnoreMissingColumns)
                    continue;
                throw new InvalidOperationException($"Column '{column.ColumnName}' (member {typeof(TDst).Name}.{column.MemberName}) is not in the model's output schema.");
            }
            var member = PocoMembers.Find(typeof(TDst), column.MemberName);
            if (!PocoWriter.CanAssign(PocoMembers.MemberType(member), outputColumn.Value.Type))
                throw new InvalidOperationException(
                    $"Can't bind the IDataView column '{outputColumn.Value.Name}' of type '{outputColumn.Value.Type}' to field or property '{member.Name}' of type '{PocoMembers.MemberType(member)}'.");
            bindings.Add((outputColumn.Value, member));
        }
        _outputRow = mapper.GetRow(_inputRow, bindings.Select(b => b.Column));
        _assigners = bindings.Select(b => PocoWriter.CreateAssigner<TDst>(_outputRow, b.Column, b.Member)).ToArray();
    }

    /// <summary>The schema of the transformer's output rows.</summary>
    public DataViewSchema OutputSchema { get; }

    /// <summary>Predicts into a new <typeparamref name="TDst"/>.</summary>
    public TDst Predict(TSrc example)
    {
        var prediction = new TDst();
        Predict(example, ref prediction);
        return prediction;
    }

    /// <summary>Predicts into <paramref name="prediction"/> (reused; created when null).</summary>
    public abstract void Predict(TSrc example, ref TDst prediction);

    private protected void PredictCore(TSrc example, ref TDst prediction)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(example);
        prediction ??= new TDst();
        _inputRow.Set(example);
        foreach (var assign in _assigners)
            assign(prediction);
    }

    /// <summary>Disposes the engine (and the transformer when it owns it).</summary>
    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _outputRow.Dispose();
        if (_ownsTransformer)
            (_transformer as IDisposable)?.Dispose();
        GC.SuppressFinalize(this);
    }
}

/// <summary>A prediction engine; not thread-safe (use one per thread).</summary>
public sealed class PredictionEngine<TSrc, TDst> : PredictionEngineBase<TSrc, TDst>
    where TSrc : class
    where TDst : class, new()
{
    internal PredictionEngine(ITransformer transformer, PredictionEngineOptions options)
        : base(transformer, options)
    {
    }

    /// <inheritdoc/>
    public override void Predict(TSrc example, ref TDst prediction) => PredictCore(example, ref prediction);
}
