using System.Reflection;
using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>A row whose values are read from one settable POCO instance (the prediction engine's input row).</summary>
internal sealed class SingleObjectRow<TRow> : DataViewRow
    where TRow : class
{
    private readonly Delegate[] _getters;
    private TRow? _current;
    private long _position = -1;

    public SingleObjectRow(DataViewSchema schema, MemberInfo[] members)
    {
        Schema = schema;
        Func<TRow> current = () => _current ?? throw new InvalidOperationException("No example has been set on the prediction engine's input row.");
        _getters = new Delegate[schema.Count];
        for (int i = 0; i < schema.Count; i++)
            _getters[i] = PocoReader.CreateGetter(members[i], schema[i].Type, current);
    }

    /// <summary>Points the row at <paramref name="example"/>; each call is a new position.</summary>
    public void Set(TRow example)
    {
        _current = example ?? throw new ArgumentNullException(nameof(example));
        _position++;
    }

    public override DataViewSchema Schema { get; }

    public override long Position => _position;

    public override long Batch => 0;

    public override ValueGetter<DataViewRowId> GetIdGetter() => (ref DataViewRowId id) => id = new DataViewRowId((ulong)_position, 0);

    public override bool IsColumnActive(DataViewSchema.Column column)
    {
        RowGetters.CheckColumnOf(Schema, column, nameof(column));
        return true;
    }

    public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
    {
        RowGetters.CheckColumnOf(Schema, column, nameof(column));
        RowGetters.CheckValueType<TValue>(Schema[column.Index]);
        return (ValueGetter<TValue>)_getters[column.Index];
    }
}
