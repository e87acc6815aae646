using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>
/// LoadFromEnumerable: a lazy view over an <see cref="IEnumerable{T}"/> of POCOs; every cursor re-enumerates the source.
/// </summary>
internal sealed class EnumerableDataView<TRow> : IDataView
    where TRow : class
{
    private readonly IEnumerable<TRow> _data;
    private readonly MemberInfo[] _members;

    public EnumerableDataView(IEnumerable<TRow> data, SchemaDefinition? definition)
    {
        _data = data ?? throw new ArgumentNullException(nameof(data));
        (Schema, _members) = BuildSchema(typeof(TRow), definition ?? SchemaDefinition.Create(typeof(TRow), SchemaDefinition.Direction.Read));
    }

    public EnumerableDataView(IEnumerable<TRow> data, DataViewSchema schema)
    {
        _data = data ?? throw new ArgumentNullException(nameof(data));
        ArgumentNullException.ThrowIfNull(schema);
        var definition = SchemaDefinition.Create(typeof(TRow), SchemaDefinition.Direction.Read);
        foreach (var column in definition)
        {
            var given = schema.GetColumnOrNull(column.ColumnName);
            if (given != null)
                column.ColumnType = given.Value.Type;
        }
        (var built, _members) = BuildSchema(typeof(TRow), definition);
        var builder = new DataViewSchema.Builder();
        foreach (var column in built)
            builder.AddColumn(column.Name, column.Type, schema.GetColumnOrNull(column.Name)?.Annotations);
        Schema = builder.ToSchema();
    }

    /// <summary>The schema and the member behind each column, checking every member/column pairing up front.</summary>
    internal static (DataViewSchema Schema, MemberInfo[] Members) BuildSchema(Type rowType, SchemaDefinition definition)
    {
        var builder = new DataViewSchema.Builder();
        var members = new List<MemberInfo>();
        foreach (var column in definition)
        {
            var member = PocoMembers.Find(rowType, column.MemberName);
            CheckReadable(member, column.ColumnType);
            builder.AddColumn(column.ColumnName, column.ColumnType);
            members.Add(member);
        }
        return (builder.ToSchema(), members.ToArray());
    }

    private static void CheckReadable(MemberInfo member, DataViewType type)
    {
        var memberType = PocoMembers.MemberType(member);
        bool ok = memberType == type.RawType
                  || (memberType == typeof(string) && type is TextDataViewType)
                  || (type is VectorDataViewType v && memberType.IsArray
                      && (memberType.GetElementType() == v.ItemType.RawType || (memberType == typeof(string[]) && v.ItemType is TextDataViewType)));
        if (!ok)
            throw PocoReader.Mismatch($"member '{member.DeclaringType?.Name}.{member.Name}'", memberType, type);
    }

    public DataViewSchema Schema { get; }

    public bool CanShuffle => false;

    public long? GetRowCount() => _data is ICollection<TRow> collection ? collection.Count : null;

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
        => new Cursor(this, RowGetters.ActiveMask(Schema, columnsNeeded));

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => new[] { GetRowCursor(columnsNeeded, rand) };

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly EnumerableDataView<TRow> _view;
        private readonly IEnumerator<TRow> _enumerator;
        private readonly bool[] _active;
        private readonly Delegate?[] _getters;
        private TRow? _current;
        private long _position = -1;

        public Cursor(EnumerableDataView<TRow> view, bool[] active)
        {
            _view = view;
            _active = active;
            _enumerator = view._data.GetEnumerator();
            _getters = new Delegate?[active.Length];
            Func<TRow> current = Current;
            for (int i = 0; i < active.Length; i++)
            {
                if (active[i])
                    _getters[i] = PocoReader.CreateGetter(view._members[i], view.Schema[i].Type, current);
            }
        }

        private TRow Current()
            => _current ?? throw new InvalidOperationException(_position < 0
                ? "The cursor is not on a row: call MoveNext() first (and check that it returned true)."
                : $"Row {_position} of the enumerable is null.");

        public override DataViewSchema Schema => _view.Schema;

        public override long Position => _position;

        public override long Batch => 0;

        public override bool MoveNext()
        {
            if (_enumerator.MoveNext())
            {
                _position++;
                _current = _enumerator.Current;
                return true;
            }
            _position = -1;
            _current = null;
            return false;
        }

        public override ValueGetter<DataViewRowId> GetIdGetter()
            => (ref DataViewRowId id) =>
            {
                if (_position < 0)
                    throw new InvalidOperationException("The cursor is not on a row.");
                id = new DataViewRowId((ulong)_position, 0);
            };

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

        protected override void Dispose(bool disposing)
        {
            if (disposing)
                _enumerator.Dispose();
            base.Dispose(disposing);
        }
    }
}
