using Microsoft.ML.Data;
using Microsoft.ML.Internal;

namespace Microsoft.ML.Transforms;

/// <summary>
/// MapValueToKey: learns a dictionary of the values of each input column and maps values to keys 1..N
/// (Key&lt;UInt32&gt;), attaching the dictionary as the "KeyValues" annotation. Missing and unseen values map to 0.
/// </summary>
public sealed class ValueToKeyMappingEstimator : IEstimator<ValueToKeyMappingTransformer>
{
    /// <summary>How keys are numbered.</summary>
    public enum KeyOrdinality : byte
    {
        /// <summary>In order of first occurrence in the training data.</summary>
        ByOccurrence = 0,

        /// <summary>In value order (ordinal for text).</summary>
        ByValue = 1,
    }

    private readonly (string OutputColumnName, string InputColumnName)[] _columns;
    private readonly int _maximumNumberOfKeys;
    private readonly KeyOrdinality _keyOrdinality;
    private readonly bool _addKeyValueAnnotationsAsText;
    private readonly IDataView? _keyData;

    internal ValueToKeyMappingEstimator((string OutputColumnName, string InputColumnName)[] columns, int maximumNumberOfKeys,
        KeyOrdinality keyOrdinality, bool addKeyValueAnnotationsAsText, IDataView? keyData)
    {
        if (maximumNumberOfKeys <= 0)
            throw new ArgumentOutOfRangeException(nameof(maximumNumberOfKeys), $"maximumNumberOfKeys must be positive, got {maximumNumberOfKeys}.");
        if (keyOrdinality is not (KeyOrdinality.ByOccurrence or KeyOrdinality.ByValue))
            throw new ArgumentOutOfRangeException(nameof(keyOrdinality));
        if (keyData != null && keyData.Schema.Count(c => !c.IsHidden) != 1)
            throw new ArgumentException($"keyData must have exactly one column, it has {keyData.Schema.Count(c => !c.IsHidden)}.", nameof(keyData));
        _columns = columns;
        _maximumNumberOfKeys = maximumNumberOfKeys;
        _keyOrdinality = keyOrdinality;
        _addKeyValueAnnotationsAsText = addKeyValueAnnotationsAsText;
        _keyData = keyData;
    }

    /// <summary>Learns the dictionaries from <paramref name="input"/> (or from keyData when given).</summary>
    public ValueToKeyMappingTransformer Fit(IDataView input)
    {
        ArgumentNullException.ThrowIfNull(input);
        GetOutputSchema(SchemaShape.Create(input.Schema));
        var maps = new TermMap[_columns.Length];
        for (int i = 0; i < _columns.Length; i++)
        {
            var (output, inputName) = _columns[i];
            var column = _keyData != null ? _keyData.Schema.Last(c => !c.IsHidden) : input.Schema[inputName];
            var itemType = ItemTypeOf(column.Type, inputName);
            var inputItem = ItemTypeOf(input.Schema[inputName].Type, inputName);
            if (!itemType.Equals(inputItem))
                throw new ArgumentException($"keyData column '{column.Name}' has item type {itemType} but input column '{inputName}' has {inputItem}.", nameof(input));
            maps[i] = TermMap.Create(itemType);
            maps[i].Train(_keyData ?? input, column, _maximumNumberOfKeys, _keyOrdinality);
            if (maps[i].Count == 0)
                throw new InvalidOperationException($"MapValueToKey found no non-missing values in column '{column.Name}' to build the dictionary of '{output}'.");
        }
        return new ValueToKeyMappingTransformer(_columns, maps, _addKeyValueAnnotationsAsText);
    }

    internal static PrimitiveDataViewType ItemTypeOf(DataViewType type, string columnName)
    {
        var item = type is VectorDataViewType vector ? vector.ItemType : type as PrimitiveDataViewType;
        if (item == null || item is RowIdDataViewType)
            throw SchemaErrors.Mismatch("inputSchema", "input", columnName, "primitive type or vector of primitive type", type.ToString()!);
        return item;
    }

    /// <summary>Each output column is a key (UInt32) with the same vector kind as its input and a "KeyValues" annotation.</summary>
    public SchemaShape GetOutputSchema(SchemaShape inputSchema)
    {
        ArgumentNullException.ThrowIfNull(inputSchema);
        var result = inputSchema.ToList();
        foreach (var (output, inputName) in _columns)
        {
            var column = SchemaErrors.Find(inputSchema, "input", inputName);
            if (column.ItemType is not PrimitiveDataViewType || column.ItemType is RowIdDataViewType)
                throw SchemaErrors.Mismatch("inputSchema", "input", inputName, "primitive type or vector of primitive type", column.GetTypeString());
            var annotations = new List<SchemaShape.Column>();
            if (column.Annotations.TryFindColumn(AnnotationKinds.SlotNames, out var slotNames))
                annotations.Add(slotNames);
            annotations.Add(new SchemaShape.Column(AnnotationKinds.KeyValues, SchemaShape.Column.VectorKind.Vector,
                _addKeyValueAnnotationsAsText ? TextDataViewType.Instance : column.ItemType, !_addKeyValueAnnotationsAsText && column.IsKey));
            ShapeEdit.Set(result, new SchemaShape.Column(output, column.Kind, NumberDataViewType.UInt32, true, new SchemaShape(annotations)));
        }
        return new SchemaShape(result);
    }
}
