using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The row mapper of a transformer that appends per-row predictions of its texts (used by the prediction engine): each
/// row is predicted alone, and only when one of the appended columns is read.
/// </summary>
internal sealed class AppendedPredictionMapper<TPrediction>(
    DataViewSchema inputSchema, BoundColumns texts, IBatchTextPredictor<TPrediction> predictor, IAppendedColumns<TPrediction> columns) : IRowToRowMapper
    where TPrediction : class
{
    public DataViewSchema InputSchema { get; } = inputSchema;

    public DataViewSchema OutputSchema { get; } = columns.OutputSchema(inputSchema);

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var list = dependingColumns.ToList();
        var result = list.Where(c => c.Index < InputSchema.Count).Select(c => InputSchema[c.Index]).ToList();
        if (list.Any(c => c.Index >= InputSchema.Count)) result.AddRange(texts.Texts);
        return result.DistinctBy(c => c.Index);
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
    {
        ArgumentNullException.ThrowIfNull(input);
        var active = activeColumns.Select(c => c.Index).ToHashSet();
        var appended = Enumerable.Range(InputSchema.Count, columns.Count).Select(active.Contains).ToArray();
        Func<TPrediction> current = appended.Any(a => a)
            ? new BatchPredictionDataView<TPrediction>.RowPredictions(input, texts, predictor).Current
            : () => throw new InvalidOperationException("no prediction column is active");
        return new AppendedPredictionRow<TPrediction>(input, OutputSchema, appended, columns, current);
    }
}
