using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Transforms;

/// <summary>MapKeyToValue: replaces keys with their "KeyValues" annotation entries (key k → KeyValues[k-1]).</summary>
public sealed class KeyToValueMappingEstimator : TrivialEstimator<KeyToValueMappingTransformer>
{
    private readonly (string OutputColumnName, string InputColumnName)[] _columns;

    internal KeyToValueMappingEstimator((string OutputColumnName, string InputColumnName)[] columns)
        : base(new KeyToValueMappingTransformer(columns))
    {
        _columns = columns;
    }

    /// <summary>Each input must be a key column with a "KeyValues" annotation; the output has the annotation's item type.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var result = inputSchema.ToList();
        foreach (var (output, input) in _columns)
        {
            var column = SchemaErrors.Find(inputSchema, "input", input);
            if (!column.IsKey)
                throw SchemaErrors.Mismatch(nameof(inputSchema), "input", input, "key type", column.GetTypeString());
            if (!column.Annotations.TryFindColumn(AnnotationKinds.KeyValues, out var keyValues) || keyValues.Kind != SchemaShape.Column.VectorKind.Vector)
                throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{input}' doesn't contain key values annotation");
            var annotations = new List<SchemaShape.Column>();
            if (column.Annotations.TryFindColumn(AnnotationKinds.SlotNames, out var slotNames))
                annotations.Add(slotNames);
            ShapeEdit.Set(result, new SchemaShape.Column(output, column.Kind, keyValues.ItemType, keyValues.IsKey, new SchemaShape(annotations)));
        }
        return new SchemaShape(result);
    }
}

/// <summary>The MapKeyToValue transformer. Key 0 and keys beyond the annotation map to the missing value (empty text, NaN).</summary>
public sealed class KeyToValueMappingTransformer : OneToOneTransformerBase
{
    internal const string LoaderName = "KeyToValueMapping";

    internal KeyToValueMappingTransformer((string OutputColumnName, string InputColumnName)[] columns)
        : base(columns.Select(c => (c.OutputColumnName, c.InputColumnName)).ToArray())
    {
    }

    private protected override ColumnBinding Bind(DataViewSchema inputSchema) => new Binding(this, inputSchema);

    private protected override PersistedComponent Persist() => PersistedComponent.Create(LoaderName, w => ColumnPairIO.Write(w, ColumnPairs));

    internal static KeyToValueMappingTransformer Load(PersistedComponent component)
    {
        using var r = component.OpenPayload();
        return new KeyToValueMappingTransformer(ColumnPairIO.Read(r, "KeyToValue"));
    }

    private sealed class Binding : ColumnBinding
    {
        private readonly int[] _inputIndices;
        private readonly KeyToValueMap[] _maps;

        public Binding(KeyToValueMappingTransformer parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            var added = new List<DataViewSchema.DetachedColumn>();
            _inputIndices = new int[parent.ColumnPairs.Length];
            _maps = new KeyToValueMap[parent.ColumnPairs.Length];
            for (int i = 0; i < parent.ColumnPairs.Length; i++)
            {
                var (output, input) = parent.ColumnPairs[i];
                var column = SchemaErrors.Find(inputSchema, "input", input);
                var vector = column.Type as VectorDataViewType;
                if ((vector?.ItemType ?? column.Type) is not KeyDataViewType keyType)
                    throw SchemaErrors.Mismatch(nameof(inputSchema), "input", input, "key type", column.Type.ToString()!);
                var keyValuesColumn = column.Annotations.Schema.GetColumnOrNull(AnnotationKinds.KeyValues);
                if (keyValuesColumn?.Type is not VectorDataViewType { IsKnownSize: true } keyValuesType)
                    throw new ArgumentOutOfRangeException(nameof(inputSchema), $"Input column '{input}' doesn't contain key values annotation");
                var keyValues = BinaryCodec.AnnotationValue(column.Annotations, keyValuesColumn.Value);
                _inputIndices[i] = column.Index;
                _maps[i] = KeyToValueMap.Create(keyType.RawType, keyValuesType.ItemType, keyValues, vector != null);
                DataViewType outputType = vector == null ? keyValuesType.ItemType : new VectorDataViewType(keyValuesType.ItemType, vector.Dimensions);
                var annotations = new DataViewSchema.Annotations.Builder();
                annotations.Add(column.Annotations, kind => kind == AnnotationKinds.SlotNames);
                added.Add(new DataViewSchema.DetachedColumn(output, outputType, annotations.ToAnnotations()));
            }
            AddedColumns = added;
        }

        public override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

        public override IEnumerable<int> GetDependencies(int addedIndex) => new[] { _inputIndices[addedIndex] };

        public override Delegate MakeGetter(DataViewRow input, int addedIndex)
            => _maps[addedIndex].MakeGetter(input, input.Schema[_inputIndices[addedIndex]]);
    }
}

/// <summary>Key → value lookup for one column, typed by the key and value raw types.</summary>
internal abstract class KeyToValueMap
{
    public abstract Delegate MakeGetter(DataViewRow input, DataViewSchema.Column column);

    public static KeyToValueMap Create(Type keyRawType, PrimitiveDataViewType valueType, object keyValues, bool isVector)
        => (KeyToValueMap)Activator.CreateInstance(typeof(KeyToValueMap<,>).MakeGenericType(keyRawType, valueType.RawType), keyValues, isVector)!;
}

internal sealed class KeyToValueMap<TKey, TValue> : KeyToValueMap
{
    private readonly TValue[] _values;
    private readonly bool _isVector;
    private readonly TValue _missing = KeyValueConvert.Missing<TValue>();

    public KeyToValueMap(object keyValues, bool isVector)
    {
        _values = ((VBuffer<TValue>)keyValues).DenseValues().ToArray();
        _isVector = isVector;
    }

    private TValue Map(TKey key)
    {
        ulong k = KeyValueConvert.ToUInt64(key);
        return k >= 1 && k <= (ulong)_values.Length ? _values[k - 1] : _missing;
    }

    public override Delegate MakeGetter(DataViewRow input, DataViewSchema.Column column)
    {
        if (!_isVector)
        {
            var getter = input.GetGetter<TKey>(column);
            TKey key = default!;
            return (ValueGetter<TValue>)((ref TValue dst) =>
            {
                getter(ref key);
                dst = Map(key);
            });
        }
        var vectorGetter = input.GetGetter<VBuffer<TKey>>(column);
        VBuffer<TKey> keys = default;
        return (ValueGetter<VBuffer<TValue>>)((ref VBuffer<TValue> dst) =>
        {
            vectorGetter(ref keys);
            var editor = VBufferEditor.Create(ref dst, keys.Length);
            int i = 0;
            foreach (var key in keys.DenseValues())
                editor.Values[i++] = Map(key);
            dst = editor.Commit();
        });
    }
}
