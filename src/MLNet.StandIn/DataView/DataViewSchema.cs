using System.Collections;
using Microsoft.ML.Data;

namespace Microsoft.ML;

/// <summary>
/// The schema of an <see cref="IDataView"/> or <see cref="DataViewRow"/>: an ordered list of named, typed columns.
/// Name lookup resolves to the last column of that name; earlier columns with the same name are hidden.
/// There is no public constructor: build one with <see cref="Builder"/>.
/// </summary>
public sealed partial class DataViewSchema : IReadOnlyList<DataViewSchema.Column>
{
    private readonly Column[] _columns;
    private readonly Dictionary<string, int> _lastIndexByName;

    private DataViewSchema(Column[] columns)
    {
        _columns = columns;
        _lastIndexByName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < columns.Length; i++)
            _lastIndexByName[columns[i].Name] = i;
    }

    /// <summary>The number of columns, hidden ones included.</summary>
    public int Count => _columns.Length;

    /// <summary>The last (visible) column named <paramref name="name"/>.</summary>
    /// <exception cref="ArgumentNullException">The name is null or empty.</exception>
    /// <exception cref="ArgumentOutOfRangeException">No column has that name.</exception>
    public Column this[string name]
    {
        get
        {
            if (string.IsNullOrEmpty(name))
                throw new ArgumentNullException(nameof(name));
            return GetColumnOrNull(name) ?? throw new ArgumentOutOfRangeException(nameof(name), $"Column '{name}' not found");
        }
    }

    /// <summary>The column at <paramref name="columnIndex"/>.</summary>
    public Column this[int columnIndex]
    {
        get
        {
            if ((uint)columnIndex >= (uint)_columns.Length)
                throw new ArgumentOutOfRangeException(nameof(columnIndex), $"Column index {columnIndex} is out of range for a schema of {_columns.Length} columns.");
            return _columns[columnIndex];
        }
    }

    /// <summary>The last (visible) column named <paramref name="name"/>, or <see langword="null"/>.</summary>
    public Column? GetColumnOrNull(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return _lastIndexByName.TryGetValue(name, out int index) ? _columns[index] : null;
    }

    /// <summary>Enumerates every column in index order.</summary>
    public IEnumerator<Column> GetEnumerator() => ((IEnumerable<Column>)_columns).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>"<c>{Count} columns</c>".</summary>
    public override string ToString() => $"{Count} columns";

    internal static DataViewSchema Create(IReadOnlyList<DetachedColumn> columns)
    {
        var lastIndex = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < columns.Count; i++)
            lastIndex[columns[i].Name] = i;
        var result = new Column[columns.Count];
        for (int i = 0; i < result.Length; i++)
        {
            var c = columns[i];
            result[i] = new Column(c.Name, i, lastIndex[c.Name] != i, c.Type, c.Annotations);
        }
        return new DataViewSchema(result);
    }

    /// <summary>A column of a built schema: name, index, hidden flag, type and annotations.</summary>
    public struct Column
    {
        /// <summary>The column name.</summary>
        public string Name { get; }

        /// <summary>The index of the column in its schema.</summary>
        public int Index { get; }

        /// <summary>Whether a later column with the same name hides this one.</summary>
        public bool IsHidden { get; }

        /// <summary>The column type.</summary>
        public DataViewType Type { get; }

        /// <summary>The annotations (never null; <see cref="Annotations.Empty"/> when there are none).</summary>
        public Annotations Annotations { get; }

        internal Column(string name, int index, bool isHidden, DataViewType type, Annotations? annotations)
        {
            Name = name;
            Index = index;
            IsHidden = isHidden;
            Type = type;
            Annotations = annotations ?? Annotations.Empty;
        }

        /// <summary>"<c>Name: Type {kind1, kind2}</c>".</summary>
        public override readonly string ToString()
        {
            string annotationKinds = Annotations.Schema.Count == 0 ? "" : $" {{{Annotations}}}";
            return $"{Name}: {Type}{annotationKinds}";
        }
    }

    /// <summary>Schema-free column metadata, used to describe columns before a schema is built.</summary>
    public struct DetachedColumn
    {
        /// <summary>The column name.</summary>
        public string Name { get; }

        /// <summary>The column type.</summary>
        public DataViewType Type { get; }

        /// <summary>The annotations (never null).</summary>
        public Annotations Annotations { get; }

        /// <summary>Describes a column by name, type and optional annotations.</summary>
        public DetachedColumn(string name, DataViewType type, Annotations? annotations = null)
        {
            Name = name ?? throw new ArgumentNullException(nameof(name));
            Type = type ?? throw new ArgumentNullException(nameof(type));
            Annotations = annotations ?? Annotations.Empty;
        }

        /// <summary>Copies the name, type and annotations of a schema column.</summary>
        public DetachedColumn(Column column)
            : this(column.Name, column.Type, column.Annotations)
        {
        }
    }

    /// <summary>Accumulates columns and builds a <see cref="DataViewSchema"/>.</summary>
    public sealed class Builder
    {
        private readonly List<DetachedColumn> _columns = new();

        /// <summary>Starts an empty builder.</summary>
        public Builder()
        {
        }

        /// <summary>Adds one column.</summary>
        public void AddColumn(string name, DataViewType type, Annotations? annotations = null)
            => _columns.Add(new DetachedColumn(name, type, annotations));

        /// <summary>Adds copies of schema columns.</summary>
        public void AddColumns(IEnumerable<Column> source)
        {
            ArgumentNullException.ThrowIfNull(source);
            foreach (var column in source)
                _columns.Add(new DetachedColumn(column));
        }

        /// <summary>Adds detached columns.</summary>
        public void AddColumns(IEnumerable<DetachedColumn> source)
        {
            ArgumentNullException.ThrowIfNull(source);
            _columns.AddRange(source);
        }

        /// <summary>Builds the schema: indices are assigned in order and earlier duplicates become hidden.</summary>
        public DataViewSchema ToSchema() => Create(_columns);
    }
}
