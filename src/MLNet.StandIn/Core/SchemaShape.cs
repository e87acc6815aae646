using System.Collections;
using Microsoft.ML.Data;

namespace Microsoft.ML;

/// <summary>
/// The data-free shape of a schema used by <see cref="IEstimator{TTransformer}.GetOutputSchema"/>: names, vector kinds,
/// item types, key flags and annotation kinds. Columns cannot be constructed outside ML.NET (internal constructor);
/// extensions obtain new columns by running public estimators' <c>GetOutputSchema</c>.
/// </summary>
public sealed class SchemaShape : IReadOnlyList<SchemaShape.Column>
{
    private readonly Column[] _columns;

    /// <summary>A shape over <paramref name="columns"/>; every column must be valid (named).</summary>
    public SchemaShape(IEnumerable<Column> columns)
    {
        ArgumentNullException.ThrowIfNull(columns);
        _columns = columns.ToArray();
        foreach (var column in _columns)
        {
            if (!column.IsValid)
                throw new ArgumentException("A SchemaShape column must have a name (default(SchemaShape.Column) is not valid).", nameof(columns));
        }
    }

    /// <summary>The number of columns.</summary>
    public int Count => _columns.Length;

    /// <summary>The column at <paramref name="index"/>.</summary>
    public Column this[int index] => _columns[index];

    /// <summary>Enumerates the columns.</summary>
    public IEnumerator<Column> GetEnumerator() => ((IEnumerable<Column>)_columns).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    internal static SchemaShape Empty { get; } = new(Array.Empty<Column>());

    /// <summary>The shape of <paramref name="schema"/> (hidden columns are skipped).</summary>
    internal static SchemaShape Create(DataViewSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        var columns = new List<Column>();
        foreach (var column in schema)
        {
            if (!column.IsHidden)
                columns.Add(Column.FromType(column.Name, column.Type, Create(column.Annotations.Schema)));
        }
        return new SchemaShape(columns);
    }

    /// <summary>Finds the last column named <paramref name="name"/>.</summary>
    internal bool TryFindColumn(string name, out Column column)
    {
        for (int i = _columns.Length - 1; i >= 0; i--)
        {
            if (_columns[i].Name == name)
            {
                column = _columns[i];
                return true;
            }
        }
        column = default;
        return false;
    }

    /// <summary>A column of a <see cref="SchemaShape"/>.</summary>
    public struct Column
    {
        /// <summary>Whether the column is a scalar, a fixed-size vector or a variable-size vector.</summary>
        public enum VectorKind
        {
            /// <summary>A single value.</summary>
            Scalar,

            /// <summary>A vector of known size.</summary>
            Vector,

            /// <summary>A vector whose size varies.</summary>
            VariableVector,
        }

        /// <summary>The column name.</summary>
        public readonly string Name;

        /// <summary>Scalar or vector.</summary>
        public readonly VectorKind Kind;

        /// <summary>The item type; for keys this is the raw number type (e.g. UInt32) and <see cref="IsKey"/> is true.</summary>
        public readonly DataViewType ItemType;

        /// <summary>Whether the items are keys.</summary>
        public readonly bool IsKey;

        /// <summary>The annotation kinds of the column, as a nested shape.</summary>
        public readonly SchemaShape Annotations;

        internal Column(string name, VectorKind vecKind, DataViewType itemType, bool isKey, SchemaShape? annotations = null)
        {
            ArgumentException.ThrowIfNullOrEmpty(name);
            ArgumentNullException.ThrowIfNull(itemType);
            if (itemType is KeyDataViewType)
                throw new ArgumentException("A SchemaShape column's item type is the key's raw number type, not the key type.", nameof(itemType));
            if (itemType is not PrimitiveDataViewType)
                throw new ArgumentException($"A SchemaShape column's item type must be primitive, got {itemType}.", nameof(itemType));
            Name = name;
            Kind = vecKind;
            ItemType = itemType;
            IsKey = isKey;
            Annotations = annotations ?? Empty;
        }

        internal static Column FromType(string name, DataViewType type, SchemaShape? annotations)
        {
            var kind = VectorKind.Scalar;
            var item = type;
            if (type is VectorDataViewType vector)
            {
                kind = vector.IsKnownSize ? VectorKind.Vector : VectorKind.VariableVector;
                item = vector.ItemType;
            }
            bool isKey = item is KeyDataViewType;
            if (isKey)
                item = NumberDataViewType.FromRawType(item.RawType)!;
            return new Column(name, kind, item, isKey, annotations);
        }

        /// <summary>Whether the column was constructed (default instances are not valid).</summary>
        internal readonly bool IsValid => Name != null;

        /// <summary>Whether a column of this shape can be fed where <paramref name="source"/> is expected.</summary>
        internal readonly bool IsCompatibleWith(Column source)
        {
            if (Name != source.Name || Kind != source.Kind || IsKey != source.IsKey || !ItemType.Equals(source.ItemType))
                return false;
            foreach (var annotation in Annotations)
            {
                if (!source.Annotations.TryFindColumn(annotation.Name, out var sourceAnnotation) || !annotation.IsCompatibleWith(sourceAnnotation))
                    return false;
            }
            return true;
        }

        /// <summary>"Vector&lt;Key&lt;UInt32&gt;&gt;"-style description of the type.</summary>
        internal readonly string GetTypeString()
        {
            string item = IsKey ? $"Key<{ItemType}>" : ItemType.ToString()!;
            return Kind switch
            {
                VectorKind.Vector => $"Vector<{item}>",
                VectorKind.VariableVector => $"VarVector<{item}>",
                _ => item,
            };
        }

        /// <summary>"Name: Type {annotation kinds}".</summary>
        public override readonly string ToString()
        {
            if (!IsValid)
                return "<invalid column>";
            string annotations = Annotations.Count == 0 ? "" : $" {{{string.Join(", ", Annotations.Select(a => a.Name))}}}";
            return $"{Name}: {GetTypeString()}{annotations}";
        }
    }
}
