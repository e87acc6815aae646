using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Transforms;

/// <summary>CopyColumns: adds a copy of a column (type and annotations included) under a new name.</summary>
public sealed class ColumnCopyingEstimator : TrivialEstimator<ColumnCopyingTransformer>
{
    private readonly (string OutputColumnName, string InputColumnName)[] _columns;

    internal ColumnCopyingEstimator((string OutputColumnName, string InputColumnName)[] columns)
        : base(new ColumnCopyingTransformer(columns))
    {
        _columns = columns;
    }

    /// <summary>Each output column has exactly the shape of its input column.</summary>
    public override SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var result = inputSchema.ToList();
        foreach (var (output, input) in _columns)
        {
            var column = SchemaErrors.Find(inputSchema, "input", input);
            ShapeEdit.Set(result, new SchemaShape.Column(output, column.Kind, column.ItemType, column.IsKey, column.Annotations));
        }
        return new SchemaShape(result);
    }
}

/// <summary>The CopyColumns transformer.</summary>
public sealed class ColumnCopyingTransformer : OneToOneTransformerBase
{
    internal const string LoaderName = "ColumnCopying";

    internal ColumnCopyingTransformer((string OutputColumnName, string InputColumnName)[] columns)
        : base(columns.Select(c => (c.OutputColumnName, c.InputColumnName)).ToArray())
    {
    }

    private protected override ColumnBinding Bind(DataViewSchema inputSchema) => new Binding(this, inputSchema);

    private protected override PersistedComponent Persist() => PersistedComponent.Create(LoaderName, w => ColumnPairIO.Write(w, ColumnPairs));

    internal static ColumnCopyingTransformer Load(PersistedComponent component)
    {
        using var r = component.OpenPayload();
        return new ColumnCopyingTransformer(ColumnPairIO.Read(r, "ColumnCopying"));
    }

    private sealed class Binding : ColumnBinding
    {
        private readonly int[] _inputIndices;

        public Binding(ColumnCopyingTransformer parent, DataViewSchema inputSchema)
            : base(inputSchema)
        {
            _inputIndices = parent.ColumnPairs.Select(p => SchemaErrors.Find(inputSchema, "input", p.inputColumnName).Index).ToArray();
            AddedColumns = parent.ColumnPairs
                .Select((p, i) => new DataViewSchema.DetachedColumn(p.outputColumnName, inputSchema[_inputIndices[i]].Type, inputSchema[_inputIndices[i]].Annotations))
                .ToArray();
        }

        public override IReadOnlyList<DataViewSchema.DetachedColumn> AddedColumns { get; }

        public override IEnumerable<int> GetDependencies(int addedIndex) => new[] { _inputIndices[addedIndex] };

        public override Delegate MakeGetter(DataViewRow input, int addedIndex)
            => RowGetters.GetUntypedGetter(input, input.Schema[_inputIndices[addedIndex]]);
    }
}
