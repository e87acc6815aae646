using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>The rows of delimited text files; each cursor re-reads the files line by line and parses only active columns.</summary>
internal sealed class TextDataView : IDataView
{
    private readonly IMultiStreamSource _source;
    private readonly TextLoader.Options _options;
    private readonly TextColumnInfo[] _columns;

    public TextDataView(IMultiStreamSource source, TextLoader.Options options, TextColumnInfo[] columns, DataViewSchema schema)
    {
        _source = source;
        _options = options;
        _columns = columns;
        Schema = schema;
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => false;

    public long? GetRowCount() => null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new Cursor(this, RowGetters.ActiveMask(Schema, columnsNeeded));

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly TextDataView _view;
        private readonly bool[] _active;
        private readonly FieldSlot?[] _slots;
        private readonly TextFieldSplitter _splitter;
        private int _file = -1;
        private TextReader? _reader;
        private long _line;
        private long _position = -1;
        private string _where = "";

        public Cursor(TextDataView view, bool[] active)
        {
            _view = view;
            _active = active;
            var options = view._options;
            _splitter = new TextFieldSplitter(options.Separators, options.AllowQuoting, options.TrimWhitespace, options.EscapeChar);
            _slots = new FieldSlot?[active.Length];
            for (int i = 0; i < active.Length; i++)
            {
                if (active[i])
                    _slots[i] = FieldSlot.Create(view._columns[i], options);
            }
        }

        public override DataViewSchema Schema => _view.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_view._options.MaxRows is long max && _position + 1 >= max)
                return Finish();
            while (true)
            {
                if (_reader == null && !OpenNextFile())
                    return Finish();
                string? line = _reader!.ReadLine();
                _line++;
                if (line == null)
                {
                    _reader.Dispose();
                    _reader = null;
                    continue;
                }
                if (_line == 1 && _view._options.HasHeader)
                    continue;
                if (string.IsNullOrWhiteSpace(line))
                    continue;
                string path = _view._source.GetPathOrNull(_file) ?? $"stream {_file}";
                _where = $"{path}:{_line}";
                var fields = _splitter.Split(line, () => _where);
                for (int i = 0; i < _slots.Length; i++)
                    _slots[i]?.Parse(fields, _where);
                _position++;
                return true;
            }
        }

        private bool OpenNextFile()
        {
            if (_file + 1 >= _view._source.Count)
                return false;
            _file++;
            _reader = _view._source.OpenTextReader(_file);
            _line = 0;
            return true;
        }

        private bool Finish()
        {
            _reader?.Dispose();
            _reader = null;
            _file = _view._source.Count;
            _position = -1;
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

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
            return (ValueGetter<TValue>)_slots[column.Index]!.Getter;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _reader?.Dispose();
            base.Dispose(disposing);
        }
    }
}

/// <summary>The parsed value of one column for the current line, and its getter.</summary>
internal abstract class FieldSlot
{
    public abstract Delegate Getter { get; }

    public abstract void Parse(List<string> fields, string where);

    public static FieldSlot Create(TextColumnInfo column, TextLoader.Options options)
        => (FieldSlot)Activator.CreateInstance(typeof(FieldSlot<>).MakeGenericType(column.ItemType.RawType), column, options)!;
}

internal sealed class FieldSlot<T> : FieldSlot
{
    private readonly TextColumnInfo _column;
    private readonly FieldParser<T> _parser;
    private readonly T _missing;
    private T _scalar = default!;
    private readonly List<T> _vector = new();

    public FieldSlot(TextColumnInfo column, TextLoader.Options options)
    {
        _column = column;
        _parser = TextValueParser.Create<T>(column.ItemType, options.MissingRealsAsNaNs, options.DecimalMarker);
        _parser("", out _missing);
        Getter = column.IsVector
            ? (ValueGetter<VBuffer<T>>)((ref VBuffer<T> dst) =>
            {
                var editor = VBufferEditor.Create(ref dst, _vector.Count);
                System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_vector).CopyTo(editor.Values);
                dst = editor.Commit();
            })
            : (ValueGetter<T>)((ref T dst) => dst = _scalar);
    }

    public override Delegate Getter { get; }

    public override void Parse(List<string> fields, string where)
    {
        if (!_column.IsVector)
        {
            _scalar = ParseField(fields, _column.Ranges[0].Min, where);
            return;
        }
        _vector.Clear();
        foreach (int index in _column.FieldIndices(fields.Count))
            _vector.Add(ParseField(fields, index, where));
        if (_column.Type is VectorDataViewType { IsKnownSize: true } vector && _vector.Count != vector.Size)
            throw new FormatException($"{where}: column '{_column.Name}' expects {vector.Size} values, got {_vector.Count}.");
    }

    private T ParseField(List<string> fields, int index, string where)
    {
        if (index >= fields.Count)
            return _missing;
        if (!_parser(fields[index], out T value))
            throw new FormatException($"{where}: cannot parse field {index} ('{fields[index]}') of column '{_column.Name}' as {_column.ItemType}.");
        return value;
    }
}
