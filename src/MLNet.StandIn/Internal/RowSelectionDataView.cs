using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>What a row selector decides for the current input row.</summary>
internal enum RowDecision
{
    Skip,
    Keep,
    Stop,
}

/// <summary>
/// A view that keeps a subset of its input's rows, in input order, without copying them: TakeRows, SkipRows and the
/// train/test and cross-validation splits. The selector is created per cursor and may read extra input columns
/// (e.g. a sampling key) that the consumer did not ask for.
/// </summary>
internal sealed class RowSelectionDataView : IDataView
{
    private readonly IDataView _input;
    private readonly Func<DataViewRowCursor, Func<RowDecision>> _createSelector;
    private readonly int[] _extraColumns;
    private readonly Func<long?> _rowCount;

    public RowSelectionDataView(IDataView input, Func<DataViewRowCursor, Func<RowDecision>> createSelector, int[] extraColumns, Func<long?> rowCount)
    {
        _input = input;
        _createSelector = createSelector;
        _extraColumns = extraColumns;
        _rowCount = rowCount;
    }

    public DataViewSchema Schema => _input.Schema;

    public bool CanShuffle => false;

    public long? GetRowCount() => _rowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var requested = RowGetters.ActiveMask(Schema, columnsNeeded);
        var inputMask = (bool[])requested.Clone();
        foreach (int extra in _extraColumns)
            inputMask[extra] = true;
        var inputCursor = _input.GetRowCursor(RowGetters.Selected(Schema, inputMask));
        return new Cursor(inputCursor, requested, _createSelector(inputCursor));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _input;
        private readonly bool[] _requested;
        private readonly Func<RowDecision> _select;
        private long _position = -1;
        private bool _done;

        public Cursor(DataViewRowCursor input, bool[] requested, Func<RowDecision> select)
        {
            _input = input;
            _requested = requested;
            _select = select;
        }

        public override DataViewSchema Schema => _input.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            while (!_done && _input.MoveNext())
            {
                var decision = _select();
                if (decision == RowDecision.Keep)
                {
                    _position++;
                    return true;
                }
                if (decision == RowDecision.Stop)
                    break;
            }
            _done = true;
            _position = -1;
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            RowGetters.CheckColumnOf(Schema, column, nameof(column));
            return _requested[column.Index];
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            RowGetters.CheckColumnOf(Schema, column, nameof(column));
            if (!_requested[column.Index])
                throw RowGetters.InactiveColumn(column);
            return _input.GetGetter<TValue>(column);
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _input.Dispose();
            base.Dispose(disposing);
        }
    }
}
