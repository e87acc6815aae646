namespace Microsoft.ML.Internal;

/// <summary>
/// ShuffleRows: the source is materialized once, then each cursor serves a pool-shuffled order. With
/// <c>shuffleSource</c> the source order is first randomly permuted (as ML.NET asks a shuffleable source for a random
/// order); the pool then emits a random pool member and refills it with the next source row, as ML.NET's
/// ShuffleTransform does. Every cursor without an explicit <see cref="Random"/> gets the same order (seeded).
/// </summary>
internal sealed class ShuffledDataView : IDataView
{
    private readonly CachedDataView _source;
    private readonly int _seed;
    private readonly int _poolSize;
    private readonly bool _shuffleSource;

    public ShuffledDataView(IDataView input, int seed, int poolSize, bool shuffleSource)
    {
        _source = input as CachedDataView ?? new CachedDataView(input);
        _seed = seed;
        _poolSize = poolSize;
        _shuffleSource = shuffleSource;
    }

    public DataViewSchema Schema => _source.Schema;

    public bool CanShuffle => true;

    public long? GetRowCount() => _source.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var data = _source.Materialized;
        var random = rand ?? new Random(_seed);
        return data.GetRowCursor(columnsNeeded, PoolShuffle(random, data.RowCount, _poolSize, _shuffleSource));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    /// <summary>The order a shuffle pool of <paramref name="poolSize"/> produces over <paramref name="rowCount"/> rows.</summary>
    internal static int[] PoolShuffle(Random random, int rowCount, int poolSize, bool shuffleSource)
    {
        int[] source = shuffleSource ? InMemoryDataView.Permutation(random, rowCount) : Enumerable.Range(0, rowCount).ToArray();
        if (poolSize <= 1)
            return source;
        var order = new int[rowCount];
        var pool = new int[Math.Min(poolSize, rowCount)];
        int filled = 0, next = 0, emitted = 0;
        while (filled < pool.Length)
            pool[filled++] = source[next++];
        while (next < rowCount)
        {
            int pick = random.Next(filled);
            order[emitted++] = pool[pick];
            pool[pick] = source[next++];
        }
        while (filled > 0)
        {
            int pick = random.Next(filled);
            order[emitted++] = pool[pick];
            pool[pick] = pool[--filled];
        }
        return order;
    }
}
