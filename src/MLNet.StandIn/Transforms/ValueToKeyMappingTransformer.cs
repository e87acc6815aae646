using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Transforms;

/// <summary>The fitted MapValueToKey: maps values to keys with the learned dictionaries.</summary>
public sealed class ValueToKeyMappingTransformer : OneToOneTransformerBase
{
    internal const string LoaderName = "ValueToKeyMapping";

    private readonly TermMap[] _maps;
    private readonly bool _keyValuesAsText;

    internal ValueToKeyMappingTransformer((string OutputColumnName, string InputColumnName)[] columns, TermMap[] maps, bool keyValuesAsText)
        : base(columns.Select(c => (c.OutputColumnName, c.InputColumnName)).ToArray())
    {
        _maps = maps;
        _keyValuesAsText = keyValuesAsText;
    }

    private protected override ColumnBinding Bind(DataViewSchema inputSchema) => new Binding(this, inputSchema);

    private sealed class Binding : ColumnBinding
    {
        private readonly ValueToKeyMappingTransformer _parent;
        private readonly int[] _inputIndices;
        private readonly bool[] _isVector;

        public Binding(ValueToKeyMappingTransformer parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            _parent = parent;
            var added = new List<DataViewSchema.DetachedColumn>();
            _inputIndices = new int[parent.ColumnPairs.Length];
            _isVector = new bool[parent.ColumnPairs.Length];
            for (int i = 0; i < parent.ColumnPairs.Length; i++)
            {
                var (output, input) = parent.ColumnPairs[i];
                var column = SchemaErrors.Find(inputSchema, "input", input);
                var map = parent._maps[i];
                var item = ValueToKeyMappingEstimator.ItemTypeOf(column.Type, input);
                if (!item.Equals(map.ItemType))
                    throw SchemaErrors.Mismatch(nameof(inputSchema), "input", input, map.ItemType.ToString()!, item.ToString()!);
                _inputIndices[i] = column.Index;
                var keyType = new KeyDataViewType(typeof(uint), map.Count);
                DataViewType outputType = keyType;
                if (column.Type is VectorDataViewType vector)
                {
                    outputType = new VectorDataViewType(keyType, vector.Dimensions);
                    _isVector[i] = true;
                }
                added.Add(new DataViewSchema.DetachedColumn(output, outputType, KeyValuesAnnotations(map, column)));
            }
            AddedColumns = added;
        }

        private DataViewSchema.Annotations KeyValuesAnnotations(TermMap map, DataViewSchema.Column input)
        {
            var builder = new DataViewSchema.Annotations.Builder();
            builder.Add(input.Annotations, kind => kind == AnnotationKinds.SlotNames);
            if (_parent._keyValuesAsText)
            {
                var text = map.KeyValuesAsText();
                builder.Add(AnnotationKinds.KeyValues, new VectorDataViewType(TextDataViewType.Instance, map.Count),
                    (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> dst) => text.CopyTo(ref dst)));
            }
            else
            {
                var type = new VectorDataViewType(map.ItemType, map.Count);
                builder.Add(AnnotationKinds.KeyValues, type, BinaryCodec.ConstantGetter(type.RawType, map.KeyValues));
            }
            return builder.ToAnnotations();
        }

        public override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

        public override IEnumerable<int> GetDependencies(int addedIndex) => new[] { _inputIndices[addedIndex] };

        public override Delegate MakeGetter(DataViewRow input, int addedIndex)
            => _parent._maps[addedIndex].MakeMappingGetter(input, input.Schema[_inputIndices[addedIndex]], _isVector[addedIndex]);
    }

    private protected override PersistedComponent Persist() => PersistedComponent.Create(LoaderName, w =>
    {
        w.Write(_keyValuesAsText);
        w.Write(ColumnPairs.Length);
        for (int i = 0; i < ColumnPairs.Length; i++)
        {
            w.Write(ColumnPairs[i].outputColumnName);
            w.Write(ColumnPairs[i].inputColumnName);
            var type = new VectorDataViewType(_maps[i].ItemType, _maps[i].Count);
            BinaryCodec.WriteType(w, type);
            BinaryCodec.WriteValue(w, type, _maps[i].KeyValues);
        }
    });

    internal static ValueToKeyMappingTransformer Load(PersistedComponent component)
    {
        using var r = component.OpenPayload();
        bool asText = r.ReadBoolean();
        int count = r.ReadInt32();
        if (count <= 0 || count > 10_000)
            throw new InvalidDataException($"Invalid column count {count} in saved ValueToKey transformer.");
        var columns = new (string, string)[count];
        var maps = new TermMap[count];
        for (int i = 0; i < count; i++)
        {
            columns[i] = (r.ReadString(), r.ReadString());
            if (BinaryCodec.ReadType(r) is not VectorDataViewType type || !type.IsKnownSize)
                throw new InvalidDataException("Invalid dictionary type in saved ValueToKey transformer.");
            var values = BinaryCodec.ReadValue(r, type);
            maps[i] = TermMap.Create(type.ItemType);
            maps[i].Restore(values);
        }
        return new ValueToKeyMappingTransformer(columns, maps, asText);
    }
}
