using Microsoft.ML;

namespace MLNet.StandIn.Tests.ThirdParty;

// Public-API-only plumbing a third-party transformer needs (ML.NET's RowToRowTransformerBase is not derivable outside
// ML.NET): a row that passes the input columns through and appends computed columns, and the view/cursor around it.

/// <summary>Creates the getter (a <c>ValueGetter&lt;RawType&gt;</c>) of appended column <c>index</c> over an input row.</summary>
internal delegate Delegate AppendedGetterFactory(DataViewRow input, int appendedIndex);

/// <summary>An input row plus appended columns; <c>outputSchema</c> = input columns followed by the appended ones.</summary>
internal sealed class AppendedColumnsRow : DataViewRow
{
    private readonly DataViewRow _input;
    private readonly int _inputCount;
    private readonly Delegate?[] _getters;

    public AppendedColumnsRow(DataViewRow input, DataViewSchema outputSchema, bool[] activeAppended, AppendedGetterFactory factory)
    {
        _input = input;
        Schema = outputSchema;
        _inputCount = input.Schema.Count;
        _getters = new Delegate?[outputSchema.Count - _inputCount];
        for (int i = 0; i < _getters.Length; i++)
        {
            if (activeAppended[i])
                _getters[i] = factory(input, i);
        }
    }

    public override DataViewSchema Schema { get; }

    public override long Position => _input.Position;

    public override long Batch => _input.Batch;

    public override ValueGetter<Microsoft.ML.Data.DataViewRowId> GetIdGetter() => _input.GetIdGetter();

    public override bool IsColumnActive(DataViewSchema.Column column)
        => column.Index < _inputCount ? _input.IsColumnActive(_input.Schema[column.Index]) : _getters[column.Index - _inputCount] != null;

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        if (column.Index < _inputCount)
            return _input.GetGetter<TValue>(_input.Schema[column.Index]);
        return _getters[column.Index - _inputCount] as ValueGetter<TValue>
               ?? throw new InvalidOperationException($"Column '{column.Name}' is inactive or is not of type {typeof(TValue)}.");
    }
}

/// <summary>The lazy output of a third-party transformer: every cursor wraps a cursor of the input.</summary>
internal sealed class AppendedColumnsDataView : IDataView
{
    private readonly IDataView _input;
    private readonly int[] _inputDependencies;
    private readonly AppendedGetterFactory _factory;

    public AppendedColumnsDataView(IDataView input, DataViewSchema outputSchema, int[] inputDependencies, AppendedGetterFactory factory)
    {
        _input = input;
        Schema = outputSchema;
        _inputDependencies = inputDependencies;
        _factory = factory;
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => _input.CanShuffle;

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int inputCount = _input.Schema.Count;
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        var active = Enumerable.Range(inputCount, Schema.Count - inputCount).Select(needed.Contains).ToArray();
        var inputColumns = needed.Where(i => i < inputCount).ToHashSet();
        if (active.Any(a => a))
            inputColumns.UnionWith(_inputDependencies);
        var cursor = _input.GetRowCursor(inputColumns.Select(i => _input.Schema[i]), rand);
        return new Cursor(cursor, new AppendedColumnsRow(cursor, Schema, active, _factory));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _input;
        private readonly AppendedColumnsRow _row;

        public Cursor(DataViewRowCursor input, AppendedColumnsRow row)
        {
            _input = input;
            _row = row;
        }

        public override DataViewSchema Schema => _row.Schema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override bool MoveNext() => _input.MoveNext();

        public override ValueGetter<Microsoft.ML.Data.DataViewRowId> GetIdGetter() => _input.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column) => _row.IsColumnActive(column);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column) => _row.GetGetter<TValue>(column);

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _input.Dispose();
            base.Dispose(disposing);
        }
    }
}
