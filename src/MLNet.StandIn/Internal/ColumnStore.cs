namespace Microsoft.ML.Internal;

/// <summary>A growable, typed column of materialized values (used by caching, shuffling and in-memory views).</summary>
internal abstract class ColumnStore
{
    public abstract int Count { get; }

    /// <summary>Creates an action that appends the current value of <paramref name="column"/> in <paramref name="row"/>.</summary>
    public abstract Action CreateAppender(DataViewRow row, DataViewSchema.Column column);

    /// <summary>A getter that reads the stored value at the row index returned by <paramref name="rowIndex"/>.</summary>
    public abstract Delegate CreateGetter(Func<int> rowIndex);

    public static ColumnStore Create(Type rawType)
        => (ColumnStore)Activator.CreateInstance(typeof(ColumnStore<>).MakeGenericType(rawType))!;

    public static ColumnStore<T> FromValues<T>(T[] values) => new(values);
}

internal sealed class ColumnStore<T> : ColumnStore
{
    private T[] _values;
    private int _count;

    public ColumnStore()
    {
        _values = new T[16];
    }

    public ColumnStore(T[] values)
    {
        _values = values;
        _count = values.Length;
    }

    public override int Count => _count;

    public T this[int index] => _values[index];

    public void Add(T value)
    {
        if (_count == _values.Length)
            Array.Resize(ref _values, _values.Length * 2);
        _values[_count++] = value;
    }

    public override Action CreateAppender(DataViewRow row, DataViewSchema.Column column)
    {
        var getter = row.GetGetter<T>(column);
        return () =>
        {
            T value = default!;
            getter(ref value);
            Add(ValueCopier<T>.Clone(in value));
        };
    }

    public override Delegate CreateGetter(Func<int> rowIndex)
    {
        var copy = ValueCopier<T>.Copy;
        return (ValueGetter<T>)((ref T destination) => copy(in _values[rowIndex()], ref destination));
    }
}
