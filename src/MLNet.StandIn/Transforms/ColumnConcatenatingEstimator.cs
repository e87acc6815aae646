using System.Reflection;
using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Transforms;

/// <summary>Concatenate: joins scalar and vector columns of one item type into a single vector column, in the given order.</summary>
public sealed class ColumnConcatenatingEstimator : IEstimator<ColumnConcatenatingTransformer>
{
    private readonly string _outputColumnName;
    private readonly string[] _inputColumnNames;

    internal ColumnConcatenatingEstimator(string outputColumnName, string[] inputColumnNames)
    {
        ArgumentException.ThrowIfNullOrEmpty(outputColumnName);
        ArgumentNullException.ThrowIfNull(inputColumnNames);
        if (inputColumnNames.Length == 0)
            throw new ArgumentException("Concatenate needs at least one input column.", nameof(inputColumnNames));
        _outputColumnName = outputColumnName;
        _inputColumnNames = inputColumnNames;
    }

    /// <summary>Checks the input schema and returns the transformer (nothing is learned).</summary>
    public ColumnConcatenatingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var transformer = new ColumnConcatenatingTransformer(_outputColumnName, _inputColumnNames);
        transformer.GetOutputSchema(input.Schema);
        return transformer;
    }

    /// <summary>The output is a vector of the common item type; variable-size if any input is.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var result = inputSchema.ToList();
        SchemaShape.Column? first = null;
        bool variable = false;
        foreach (var name in _inputColumnNames)
        {
            var column = SchemaErrors.Find(inputSchema, "input", name);
            if (first is { } f && (!f.ItemType.Equals(column.ItemType) || f.IsKey != column.IsKey))
                throw SchemaErrors.Mismatch(nameof(inputSchema), "input", name, f.GetTypeString(), column.GetTypeString());
            first ??= column;
            variable |= column.Kind == SchemaShape.Column.VectorKind.VariableVector;
        }
        var kind = variable ? SchemaShape.Column.VectorKind.VariableVector : SchemaShape.Column.VectorKind.Vector;
        ShapeEdit.Set(result, new SchemaShape.Column(_outputColumnName, kind, first!.Value.ItemType, first.Value.IsKey));
        return new SchemaShape(result);
    }
}

/// <summary>The Concatenate transformer.</summary>
public sealed class ColumnConcatenatingTransformer : RowToRowTransformerBase
{
    internal const string LoaderName = "ColumnConcatenating";

    private readonly string _outputColumnName;
    private readonly string[] _inputColumnNames;

    internal ColumnConcatenatingTransformer(string outputColumnName, string[] inputColumnNames)
    {
        _outputColumnName = outputColumnName;
        _inputColumnNames = inputColumnNames;
    }

    private protected override ColumnBinding Bind(DataViewSchema inputSchema) => new Binding(this, inputSchema);

    private protected override PersistedComponent Persist() => PersistedComponent.Create(LoaderName, w =>
    {
        w.Write(_outputColumnName);
        w.Write(_inputColumnNames.Length);
        foreach (var name in _inputColumnNames)
            w.Write(name);
    });

    internal static ColumnConcatenatingTransformer Load(PersistedComponent component)
    {
        using var r = component.OpenPayload();
        string output = r.ReadString();
        int count = r.ReadInt32();
        if (count <= 0 || count > 100_000)
            throw new InvalidDataException($"Invalid input count {count} in saved Concatenate transformer.");
        var inputs = new string[count];
        for (int i = 0; i < count; i++)
            inputs[i] = r.ReadString();
        return new ColumnConcatenatingTransformer(output, inputs);
    }

    private sealed class Binding : ColumnBinding
    {
        private readonly int[] _inputIndices;
        private readonly PrimitiveDataViewType _itemType;

        public Binding(ColumnConcatenatingTransformer parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            _inputIndices = new int[parent._inputColumnNames.Length];
            PrimitiveDataViewType? item = null;
            int size = 0;
            for (int i = 0; i < _inputIndices.Length; i++)
            {
                string name = parent._inputColumnNames[i];
                var column = SchemaErrors.Find(inputSchema, "input", name);
                var vector = column.Type as VectorDataViewType;
                var columnItem = vector?.ItemType ?? column.Type as PrimitiveDataViewType
                                 ?? throw SchemaErrors.Mismatch(nameof(inputSchema), "input", name, "primitive or vector", column.Type.ToString()!);
                if (item != null && !item.Equals(columnItem))
                    throw SchemaErrors.Mismatch(nameof(inputSchema), "input", name, item.ToString()!, columnItem.ToString()!);
                item = columnItem;
                _inputIndices[i] = column.Index;
                size = size < 0 || (vector != null && !vector.IsKnownSize) ? -1 : size + (vector?.Size ?? 1);
            }
            _itemType = item!;
            AddedColumns = new[] { new DataViewSchema.DetachedColumn(parent._outputColumnName, new VectorDataViewType(_itemType, Math.Max(size, 0))) };
        }

        public override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

        public override IEnumerable<int> GetDependencies(int addedIndex) => _inputIndices;

        public override Delegate MakeGetter(DataViewRow input, int addedIndex)
        {
            var method = typeof(Binding).GetMethod(nameof(MakeTyped), BindingFlags.NonPublic | BindingFlags.Instance)!.MakeGenericMethod(_itemType.RawType);
            return (Delegate)method.Invoke(this, new object[] { input })!;
        }

        private ValueGetter<VBuffer<T>> MakeTyped<T>(DataViewRow input)
        {
            // Each source contributes a span writer; the output is always dense.
            var parts = _inputIndices.Select(index =>
            {
                var column = input.Schema[index];
                if (column.Type is VectorDataViewType)
                {
                    var getter = input.GetGetter<VBuffer<T>>(column);
                    VBuffer<T> buffer = default;
                    return (Length: (Func<int>)(() => { getter(ref buffer); return buffer.Length; }), Write: (SpanWriter<T>)((Span<T> dst) => buffer.CopyTo(dst)));
                }
                var scalar = input.GetGetter<T>(column);
                T value = default!;
                return (Length: (Func<int>)(() => { scalar(ref value); return 1; }), Write: (SpanWriter<T>)((Span<T> dst) => dst[0] = value));
            }).ToArray();
            var lengths = new int[parts.Length];
            return (ref VBuffer<T> dst) =>
            {
                int total = 0;
                for (int i = 0; i < parts.Length; i++)
                    total += lengths[i] = parts[i].Length();
                var editor = VBufferEditor.Create(ref dst, total);
                int offset = 0;
                for (int i = 0; i < parts.Length; i++)
                {
                    parts[i].Write(editor.Values.Slice(offset, lengths[i]));
                    offset += lengths[i];
                }
                dst = editor.Commit();
            };
        }
    }

    private delegate void SpanWriter<T>(Span<T> destination);
}
