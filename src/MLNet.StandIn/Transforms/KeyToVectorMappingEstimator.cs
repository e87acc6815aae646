using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Transforms;

/// <summary>
/// MapKeyToVector: a key with N values becomes an indicator vector of N floats (one-hot; key 0 gives all zeros).
/// A vector of keys gives the concatenated indicators, or with <c>outputCountVector</c> the per-key counts.
/// </summary>
public sealed class KeyToVectorMappingEstimator : TrivialEstimator<KeyToVectorMappingTransformer>
{
    private readonly (string OutputColumnName, string InputColumnName, bool OutputCountVector)[] _columns;

    internal KeyToVectorMappingEstimator((string OutputColumnName, string InputColumnName, bool OutputCountVector)[] columns)
        : base(new KeyToVectorMappingTransformer(columns))
    {
        _columns = columns;
    }

    /// <summary>Each output is a known-size Vector&lt;Single&gt; with SlotNames (from text key values), CategoricalSlotRanges and IsNormalized.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var result = inputSchema.ToList();
        foreach (var (output, input, countVector) in _columns)
        {
            var column = SchemaErrors.Find(inputSchema, "input", input);
            if (!column.IsKey)
                throw SchemaErrors.Mismatch(nameof(inputSchema), "input", input, "key type", column.GetTypeString());
            var annotations = new List<SchemaShape.Column>();
            if (column.Annotations.TryFindColumn(AnnotationKinds.KeyValues, out var keyValues)
                && column.Kind != SchemaShape.Column.VectorKind.VariableVector && keyValues.ItemType is TextDataViewType)
                annotations.Add(new SchemaShape.Column(AnnotationKinds.SlotNames, SchemaShape.Column.VectorKind.Vector, keyValues.ItemType, false));
            if (!countVector || column.Kind == SchemaShape.Column.VectorKind.Scalar)
                annotations.Add(new SchemaShape.Column(AnnotationKinds.CategoricalSlotRanges, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Int32, false));
            if (!countVector)
                annotations.Add(new SchemaShape.Column(AnnotationKinds.IsNormalized, SchemaShape.Column.VectorKind.Scalar, BooleanDataViewType.Instance, false));
            ShapeEdit.Set(result, new SchemaShape.Column(output, SchemaShape.Column.VectorKind.Vector, NumberDataViewType.Single, false, new SchemaShape(annotations)));
        }
        return new SchemaShape(result);
    }
}

/// <summary>The MapKeyToVector transformer.</summary>
public sealed class KeyToVectorMappingTransformer : OneToOneTransformerBase
{
    internal const string LoaderName = "KeyToVectorMapping";

    private readonly bool[] _countVector;

    internal KeyToVectorMappingTransformer((string OutputColumnName, string InputColumnName, bool OutputCountVector)[] columns)
        : base(columns.Select(c => (c.OutputColumnName, c.InputColumnName)).ToArray())
    {
        _countVector = columns.Select(c => c.OutputCountVector).ToArray();
    }

    private protected override ColumnBinding Bind(DataViewSchema inputSchema) => new Binding(this, inputSchema);

    private protected override PersistedComponent Persist() => PersistedComponent.Create(LoaderName, w =>
    {
        ColumnPairIO.Write(w, ColumnPairs);
        foreach (bool count in _countVector)
            w.Write(count);
    });

    internal static KeyToVectorMappingTransformer Load(PersistedComponent component)
    {
        using var r = component.OpenPayload();
        var pairs = ColumnPairIO.Read(r, "KeyToVector");
        return new KeyToVectorMappingTransformer(pairs.Select(p => (p.Item1, p.Item2, r.ReadBoolean())).ToArray());
    }

    private sealed class Binding : ColumnBinding
    {
        private readonly int[] _inputIndices;
        private readonly Func<DataViewRow, DataViewSchema.Column, Delegate>[] _getterFactories;

        public Binding(KeyToVectorMappingTransformer parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            int n = parent.ColumnPairs.Length;
            _inputIndices = new int[n];
            _getterFactories = new Func<DataViewRow, DataViewSchema.Column, Delegate>[n];
            var added = new List<DataViewSchema.DetachedColumn>();
            for (int i = 0; i < n; i++)
            {
                var (output, input) = parent.ColumnPairs[i];
                var column = SchemaErrors.Find(inputSchema, "input", input);
                var vector = column.Type as VectorDataViewType;
                if ((vector?.ItemType ?? column.Type) is not KeyDataViewType keyType || keyType.Count > int.MaxValue)
                    throw SchemaErrors.Mismatch(nameof(inputSchema), "input", input, "key type of known cardinality", column.Type.ToString()!);
                int keyCount = (int)keyType.Count;
                bool count = parent._countVector[i];
                if (vector != null && !vector.IsKnownSize && !count)
                    throw SchemaErrors.Mismatch(nameof(inputSchema), "input", input, "scalar or known-size vector of keys", column.Type.ToString()!);
                int slots = vector == null || count ? keyCount : checked(keyCount * vector.Size);
                _inputIndices[i] = column.Index;
                _getterFactories[i] = (row, col) => IndicatorGetters.Create(keyType.RawType, row, col, keyCount, vector != null, count);
                added.Add(new DataViewSchema.DetachedColumn(output, new VectorDataViewType(NumberDataViewType.Single, slots), Annotations(column, keyCount, count, vector)));
            }
            AddedColumns = added;
        }

        private static DataViewSchema.Annotations Annotations(DataViewSchema.Column column, int keyCount, bool count, VectorDataViewType? vector)
        {
            var builder = new DataViewSchema.Annotations.Builder();
            var keyValues = column.Annotations.Schema.GetColumnOrNull(AnnotationKinds.KeyValues);
            if (keyValues?.Type is VectorDataViewType { ItemType: TextDataViewType } kvType && kvType.Size == keyCount && (vector == null || count))
            {
                var names = (VBuffer<ReadOnlyMemory<char>>)BinaryCodec.AnnotationValue(column.Annotations, keyValues.Value);
                builder.Add(AnnotationKinds.SlotNames, new VectorDataViewType(TextDataViewType.Instance, keyCount),
                    (ValueGetter<VBuffer<ReadOnlyMemory<char>>>)((ref VBuffer<ReadOnlyMemory<char>> dst) => names.CopyTo(ref dst)));
            }
            if (!count || vector == null)
            {
                int blocks = vector == null || count ? 1 : vector.Size;
                var ranges = new int[2 * blocks];
                for (int b = 0; b < blocks; b++)
                {
                    ranges[2 * b] = b * keyCount;
                    ranges[2 * b + 1] = (b + 1) * keyCount - 1;
                }
                builder.Add(AnnotationKinds.CategoricalSlotRanges, new VectorDataViewType(NumberDataViewType.Int32, ranges.Length),
                    (ValueGetter<VBuffer<int>>)((ref VBuffer<int> dst) => new VBuffer<int>(ranges.Length, ranges).CopyTo(ref dst)));
            }
            if (!count)
                builder.AddPrimitiveValue(AnnotationKinds.IsNormalized, BooleanDataViewType.Instance, true);
            return builder.ToAnnotations();
        }

        public override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

        public override IEnumerable<int> GetDependencies(int addedIndex) => new[] { _inputIndices[addedIndex] };

        public override Delegate MakeGetter(DataViewRow input, int addedIndex)
            => _getterFactories[addedIndex](input, input.Schema[_inputIndices[addedIndex]]);
    }
}

/// <summary>Builds the indicator/count vectors of MapKeyToVector; each output is written densely in one pass over the keys.</summary>
internal static class IndicatorGetters
{
    public static Delegate Create(Type keyRawType, DataViewRow row, DataViewSchema.Column column, int keyCount, bool isVector, bool countVector)
    {
        var method = typeof(IndicatorGetters).GetMethod(nameof(CreateTyped), System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Static)!
            .MakeGenericMethod(keyRawType);
        return (Delegate)method.Invoke(null, new object[] { row, column, keyCount, isVector, countVector })!;
    }

    private static ValueGetter<VBuffer<float>> CreateTyped<TKey>(DataViewRow row, DataViewSchema.Column column, int keyCount, bool isVector, bool countVector)
    {
        if (!isVector)
        {
            var getter = row.GetGetter<TKey>(column);
            TKey key = default!;
            return (ref VBuffer<float> dst) =>
            {
                getter(ref key);
                var editor = VBufferEditor.Create(ref dst, keyCount);
                editor.Values.Clear();
                ulong k = KeyValueConvert.ToUInt64(key);
                if (k >= 1 && k <= (ulong)keyCount)
                    editor.Values[(int)k - 1] = 1;
                dst = editor.Commit();
            };
        }
        var vectorGetter = row.GetGetter<VBuffer<TKey>>(column);
        VBuffer<TKey> keys = default;
        return (ref VBuffer<float> dst) =>
        {
            vectorGetter(ref keys);
            int length = countVector ? keyCount : keyCount * keys.Length;
            var editor = VBufferEditor.Create(ref dst, length);
            editor.Values.Clear();
            int slot = 0;
            foreach (var key in keys.DenseValues())
            {
                ulong k = KeyValueConvert.ToUInt64(key);
                if (k >= 1 && k <= (ulong)keyCount)
                {
                    if (countVector)
                        editor.Values[(int)k - 1] += 1;
                    else
                        editor.Values[slot * keyCount + (int)k - 1] = 1;
                }
                slot++;
            }
            dst = editor.Commit();
        };
    }
}
