namespace Microsoft.ML.Internal;

/// <summary>Materializes its source on the first cursor request (thread-safe) and serves every later pass from memory.</summary>
internal sealed class CachedDataView : IDataView
{
    private readonly IDataView _source;
    private readonly Lazy<InMemoryDataView> _cache;

    public CachedDataView(IDataView source)
    {
        _source = source;
        _cache = new Lazy<InMemoryDataView>(() => InMemoryDataView.Materialize(source), LazyThreadSafetyMode.ExecutionAndPublication);
    }

    public DataViewSchema Schema => _source.Schema;

    public bool CanShuffle => true;

    public long? GetRowCount() => _cache.IsValueCreated ? _cache.Value.RowCount : _source.GetRowCount();

    public InMemoryDataView Materialized => _cache.Value;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => _cache.Value.GetRowCursor(columnsNeeded, rand);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };
}
