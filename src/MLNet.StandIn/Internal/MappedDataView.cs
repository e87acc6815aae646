using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>The lazy result of applying a stand-in row-to-row transformer to a view.</summary>
internal sealed class MappedDataView : IDataView
{
    private readonly IDataView _input;
    private readonly BoundRowMapper _mapper;
    private readonly ColumnBinding _binding;

    public MappedDataView(IDataView input, ColumnBinding binding)
    {
        _input = input;
        _binding = binding;
        _mapper = new BoundRowMapper(binding);
    }

    public bool CanShuffle => _input.CanShuffle;

    public DataViewSchema Schema => _binding.OutputSchema;

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        var outputMask = RowGetters.ActiveMask(Schema, columnsNeeded);
        var inputMask = _mapper.InputMask(outputMask);
        var inputCursor = _input.GetRowCursor(RowGetters.Selected(_input.Schema, inputMask), rand);
        return new Cursor(inputCursor, new MappedRow(_binding, inputCursor, outputMask));
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly DataViewRowCursor _input;
        private readonly MappedRow _row;

        public Cursor(DataViewRowCursor input, MappedRow row)
        {
            _input = input;
            _row = row;
        }

        public override DataViewSchema Schema => _row.Schema;

        public override long Position => _input.Position;

        public override long Batch => _input.Batch;

        public override bool MoveNext() => _input.MoveNext();

        public override ValueGetter<DataViewRowId> GetIdGetter() => _input.GetIdGetter();

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
