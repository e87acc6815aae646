using Microsoft.ML.Data;

namespace Microsoft.ML;

public sealed partial class DataViewSchema
{
    /// <summary>
    /// Typed per-column metadata ("annotations"), itself a one-row table: <see cref="Schema"/> names the kinds
    /// (e.g. "KeyValues", "SlotNames") and each kind has a getter for its single value.
    /// </summary>
    public sealed class Annotations
    {
        private readonly Delegate[] _getters;

        /// <summary>The annotation columns; their names are the annotation kinds.</summary>
        public DataViewSchema Schema { get; }

        /// <summary>Annotations with no kinds.</summary>
        public static Annotations Empty { get; } = new Annotations(new DataViewSchema(Array.Empty<Column>()), Array.Empty<Delegate>());

        private Annotations(DataViewSchema schema, Delegate[] getters)
        {
            Schema = schema;
            _getters = getters;
        }

        /// <summary>The getter of the annotation <paramref name="column"/> (a column of <see cref="Schema"/>).</summary>
        public ValueGetter<TValue> GetGetter<TValue>(Column column)
        {
            if ((uint)column.Index >= (uint)Schema.Count || !Schema[column.Index].Type.Equals(column.Type) || Schema[column.Index].Name != column.Name)
                throw new ArgumentOutOfRangeException(nameof(column), $"Annotation column '{column.Name}' does not belong to these annotations.");
            if (_getters[column.Index] is not ValueGetter<TValue> getter)
                throw new InvalidOperationException(
                    $"Invalid TValue in GetGetter for annotation '{column.Name}': expected type '{column.Type.RawType}', got '{typeof(TValue)}'.");
            return getter;
        }

        /// <summary>Reads the value of the annotation <paramref name="kind"/>.</summary>
        /// <exception cref="InvalidOperationException">The kind is absent or <typeparamref name="TValue"/> is not its raw type.</exception>
        public void GetValue<TValue>(string kind, ref TValue value)
        {
            var column = Schema.GetColumnOrNull(kind) ?? throw new InvalidOperationException($"Invalid call to '{nameof(GetValue)}': no annotation of kind '{kind}'.");
            GetGetter<TValue>(column)(ref value);
        }

        /// <summary>The annotation kinds, comma separated.</summary>
        public override string ToString() => string.Join(", ", Schema.Select(c => c.Name));

        /// <summary>Builds <see cref="Annotations"/> kind by kind.</summary>
        public sealed class Builder
        {
            private readonly List<(DetachedColumn Column, Delegate Getter)> _items = new();

            /// <summary>Starts an empty builder.</summary>
            public Builder()
            {
            }

            /// <summary>Copies the kinds of <paramref name="annotations"/> for which <paramref name="selector"/> returns true.</summary>
            public void Add(Annotations annotations, Func<string, bool> selector)
            {
                ArgumentNullException.ThrowIfNull(annotations);
                ArgumentNullException.ThrowIfNull(selector);
                foreach (var column in annotations.Schema)
                {
                    if (!column.IsHidden && selector(column.Name))
                        _items.Add((new DetachedColumn(column), annotations._getters[column.Index]));
                }
            }

            /// <summary>Adds one kind with its getter; <paramref name="type"/>.RawType must be <typeparamref name="TValue"/>.</summary>
            public void Add<TValue>(string name, DataViewType type, ValueGetter<TValue> getter, Annotations? annotations = null)
            {
                ArgumentNullException.ThrowIfNull(getter);
                Add(name, type, (Delegate)getter, annotations);
            }

            /// <summary>Adds one kind with an untyped getter, which must be a <c>ValueGetter</c> of the type's raw type.</summary>
            public void Add(string name, DataViewType type, Delegate getter, Annotations? annotations = null)
            {
                ArgumentException.ThrowIfNullOrEmpty(name);
                ArgumentNullException.ThrowIfNull(type);
                ArgumentNullException.ThrowIfNull(getter);
                var expected = typeof(ValueGetter<>).MakeGenericType(type.RawType);
                if (getter.GetType() != expected)
                    throw new ArgumentException($"Annotation '{name}' of type {type} needs a getter of type {expected}, got {getter.GetType()}.", nameof(getter));
                _items.Add((new DetachedColumn(name, type, annotations), getter));
            }

            /// <summary>Adds one kind whose value is the constant <paramref name="value"/>.</summary>
            public void AddPrimitiveValue<TValue>(string name, PrimitiveDataViewType type, TValue value, Annotations? annotations = null)
            {
                ArgumentNullException.ThrowIfNull(type);
                if (type.RawType != typeof(TValue))
                    throw new ArgumentException($"Annotation '{name}': type {type} has raw type {type.RawType}, but the value is {typeof(TValue)}.", nameof(value));
                Add(name, type, (ref TValue dst) => dst = value, annotations);
            }

            /// <summary>Builds the annotations.</summary>
            public Annotations ToAnnotations()
            {
                if (_items.Count == 0)
                    return Empty;
                var schema = Create(_items.Select(i => i.Column).ToArray());
                return new Annotations(schema, _items.Select(i => i.Getter).ToArray());
            }
        }
    }
}
