using Microsoft.ML.Data;

namespace Microsoft.ML;

/// <summary>
/// The input and output of query operators (transforms): a lazy, re-iterable, schema-typed table.
/// Each call to <see cref="GetRowCursor"/> starts an independent pass over the rows.
/// </summary>
public interface IDataView
{
    /// <summary>Whether cursors can be served in a random order when a <see cref="Random"/> is supplied.</summary>
    bool CanShuffle { get; }

    /// <summary>The row count if it is known cheaply (O(1)), otherwise <see langword="null"/>.</summary>
    long? GetRowCount();

    /// <summary>Gets one cursor over the rows; only the columns in <paramref name="columnsNeeded"/> are active.</summary>
    DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null);

    /// <summary>Gets up to <paramref name="n"/> cursors that together cover every row once (may return a single cursor).</summary>
    DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null);

    /// <summary>The schema of the rows this view serves.</summary>
    DataViewSchema Schema { get; }
}

/// <summary>Writes the current row's value into <paramref name="value"/>, reusing buffers it already holds where possible.</summary>
public delegate void ValueGetter<TValue>(ref TValue value);

/// <summary>A row of an <see cref="IDataView"/>: typed getters over the active columns of <see cref="Schema"/>.</summary>
public abstract class DataViewRow : IDisposable
{
    /// <summary>0-based index of the row within this cursor; -1 before the first row and after the end.</summary>
    public abstract long Position { get; }

    /// <summary>The batch id of this row for parallel cursor sets (0 for a single cursor).</summary>
    public abstract long Batch { get; }

    /// <summary>A getter of an id that is unique and stable for this row within its view.</summary>
    public abstract ValueGetter<DataViewRowId> GetIdGetter();

    /// <summary>Whether <paramref name="column"/> is active (its getter can be requested).</summary>
    public abstract bool IsColumnActive(DataViewSchema.Column column);

    /// <summary>A getter for <paramref name="column"/>; throws if it is inactive or <typeparamref name="TValue"/> is not its raw type.</summary>
    public abstract ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column);

    /// <summary>The schema of this row.</summary>
    public abstract DataViewSchema Schema { get; }

    /// <summary>Releases the row (and any cursor it belongs to).</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases resources; <paramref name="disposing"/> is true when called from <see cref="Dispose()"/>.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>A forward-only cursor over the rows of an <see cref="IDataView"/>.</summary>
public abstract class DataViewRowCursor : DataViewRow
{
    /// <summary>Advances to the next row; returns false at the end.</summary>
    public abstract bool MoveNext();
}
