using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// A materialized, column-major view. It knows its row count and can serve rows in any order, so it supports
/// shuffling (a random permutation when a <see cref="Random"/> is given) and is the backing store of Cache.
/// </summary>
internal sealed class InMemoryDataView : IDataView
{
    private readonly ColumnStore[] _columns;
    private readonly int _rowCount;

    public InMemoryDataView(DataViewSchema schema, ColumnStore[] columns, int rowCount)
    {
        Schema = schema;
        _columns = columns;
        _rowCount = rowCount;
    }

    /// <summary>Reads every column of every row of <paramref name="source"/> into memory.</summary>
    public static InMemoryDataView Materialize(IDataView source)
    {
        if (source is InMemoryDataView already)
            return already;
        var schema = source.Schema;
        var stores = schema.Select(c => ColumnStore.Create(c.Type.RawType)).ToArray();
        int rows = 0;
        using (var cursor = source.GetRowCursor(schema))
        {
            var appenders = schema.Select(c => stores[c.Index].CreateAppender(cursor, c)).ToArray();
            while (cursor.MoveNext())
            {
                foreach (var append in appenders)
                    append();
                rows++;
            }
        }
        return new InMemoryDataView(schema, stores, rows);
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => true;

    public int RowCount => _rowCount;

    public long? GetRowCount() => _rowCount;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int[]? order = rand is null ? null : Permutation(rand, _rowCount);
        return GetRowCursor(columnsNeeded, order);
    }

    /// <summary>A cursor that serves rows in <paramref name="order"/> (all rows in index order when null).</summary>
    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, int[]? order)
        => new Cursor(this, RowGetters.ActiveMask(Schema, columnsNeeded), order);

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    /// <summary>A uniformly random permutation of 0..n-1 (Fisher-Yates).</summary>
    public static int[] Permutation(Random rand, int n)
    {
        var order = new int[n];
        for (int i = 0; i < n; i++)
            order[i] = i;
        for (int i = n - 1; i > 0; i--)
        {
            int j = rand.Next(i + 1);
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly InMemoryDataView _view;
        private readonly bool[] _active;
        private readonly int[]? _order;
        private readonly int _length;
        private readonly Delegate?[] _getters;
        private long _position = -1;
        private int _row = -1;

        public Cursor(InMemoryDataView view, bool[] active, int[]? order)
        {
            _view = view;
            _active = active;
            _order = order;
            _length = order?.Length ?? view._rowCount;
            _getters = new Delegate?[active.Length];
            Func<int> rowIndex = CurrentRow;
            for (int i = 0; i < active.Length; i++)
            {
                if (active[i])
                    _getters[i] = view._columns[i].CreateGetter(rowIndex);
            }
        }

        private int CurrentRow()
        {
            if (_row < 0)
                throw new InvalidOperationException("The cursor is not on a row: call MoveNext() first (and check that it returned true).");
            return _row;
        }

        public override DataViewSchema Schema => _view.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_position + 1 < _length)
            {
                _position++;
                _row = _order?[_position] ?? (int)_position;
                return true;
            }
            _position = -1;
            _row = -1;
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) => id = new DataViewRowId((ulong)CurrentRow(), 0);

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            RowGetters.CheckColumnOf(Schema, column, nameof(column));
            return _active[column.Index];
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            RowGetters.CheckColumnOf(Schema, column, nameof(column));
            if (!_active[column.Index])
                throw RowGetters.InactiveColumn(column);
            RowGetters.CheckValueType<TValue>(Schema[column.Index]);
            return (ValueGetter<TValue>)_getters[column.Index]!;
        }
    }
}
