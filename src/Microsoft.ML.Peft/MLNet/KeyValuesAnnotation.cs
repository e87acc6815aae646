using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>
/// The label's <c>KeyValues</c> (class names) kept by the transformer: for the PredictedLabel annotation, the Score's
/// SlotNames, and persistence. Text, numeric and Boolean key values are supported (what MapValueToKey produces).
/// </summary>
internal sealed class KeyValuesAnnotation
{
    private KeyValuesAnnotation(PrimitiveDataViewType itemType, string[] values)
    {
        ItemType = itemType;
        Values = values;
    }

    public PrimitiveDataViewType ItemType { get; }

    /// <summary>The values as invariant text (round-trip formats).</summary>
    public string[] Values { get; }

    /// <summary>The class names as text.</summary>
    public IReadOnlyList<string> Names => Values;

    /// <summary>Reads the KeyValues annotation of a key column, or null when it has none.</summary>
    public static KeyValuesAnnotation? From(DataViewSchema.Column label)
    {
        var column = label.Annotations.Schema.GetColumnOrNull("KeyValues");
        if (column is not { Type: VectorDataViewType { ItemType: var item } }) return null;
        return item switch
        {
            TextDataViewType => new(TextDataViewType.Instance, Read<ReadOnlyMemory<char>>(label, v => v.ToString())),
            BooleanDataViewType => new(BooleanDataViewType.Instance, Read<bool>(label, v => v ? "true" : "false")),
            NumberDataViewType n when n.RawType == typeof(float) => new(n, Read<float>(label, v => v.ToString("R", CultureInfo.InvariantCulture))),
            NumberDataViewType n when n.RawType == typeof(double) => new(n, Read<double>(label, v => v.ToString("R", CultureInfo.InvariantCulture))),
            NumberDataViewType n when n.RawType == typeof(int) => new(n, Read<int>(label, v => v.ToString(CultureInfo.InvariantCulture))),
            NumberDataViewType n when n.RawType == typeof(long) => new(n, Read<long>(label, v => v.ToString(CultureInfo.InvariantCulture))),
            NumberDataViewType n when n.RawType == typeof(uint) => new(n, Read<uint>(label, v => v.ToString(CultureInfo.InvariantCulture))),
            _ => throw new NotSupportedException($"the label column '{label.Name}' has KeyValues of type {item}; supported: Text, Boolean, Single, Double, Int32, Int64, UInt32"),
        };
    }

    /// <summary>Rebuilds from persisted text (see <see cref="TypeName"/>).</summary>
    public static KeyValuesAnnotation FromText(string typeName, string[] values)
    {
        PrimitiveDataViewType type = typeName switch
        {
            "Text" => TextDataViewType.Instance,
            "Boolean" => BooleanDataViewType.Instance,
            "Single" => NumberDataViewType.Single,
            "Double" => NumberDataViewType.Double,
            "Int32" => NumberDataViewType.Int32,
            "Int64" => NumberDataViewType.Int64,
            "UInt32" => NumberDataViewType.UInt32,
            _ => throw new InvalidDataException($"unknown KeyValues type '{typeName}'"),
        };
        return new KeyValuesAnnotation(type, values);
    }

    /// <summary>The item type's name for persistence.</summary>
    public string TypeName => ItemType switch
    {
        TextDataViewType => "Text",
        BooleanDataViewType => "Boolean",
        _ => ItemType.RawType.Name,
    };

    /// <summary>Adds a Vector annotation named <paramref name="kind"/> holding the values in their original type.</summary>
    public void AddTo(DataViewSchema.Annotations.Builder builder, string kind)
    {
        var type = new VectorDataViewType(ItemType, Values.Length);
        switch (ItemType)
        {
            case TextDataViewType: Add(builder, kind, type, v => v.AsMemory()); break;
            case BooleanDataViewType: Add(builder, kind, type, v => v == "true"); break;
            default:
                if (ItemType.RawType == typeof(float)) Add(builder, kind, type, v => float.Parse(v, CultureInfo.InvariantCulture));
                else if (ItemType.RawType == typeof(double)) Add(builder, kind, type, v => double.Parse(v, CultureInfo.InvariantCulture));
                else if (ItemType.RawType == typeof(int)) Add(builder, kind, type, v => int.Parse(v, CultureInfo.InvariantCulture));
                else if (ItemType.RawType == typeof(long)) Add(builder, kind, type, v => long.Parse(v, CultureInfo.InvariantCulture));
                else Add(builder, kind, type, v => uint.Parse(v, CultureInfo.InvariantCulture));
                break;
        }
    }

    private void Add<T>(DataViewSchema.Annotations.Builder builder, string kind, VectorDataViewType type, Func<string, T> parse)
    {
        var values = Values.Select(parse).ToArray();
        builder.Add(kind, type, (ref VBuffer<T> dst) =>
        {
            var editor = VBufferEditor.Create(ref dst, values.Length);
            values.CopyTo(editor.Values);
            dst = editor.Commit();
        });
    }

    private static string[] Read<T>(DataViewSchema.Column label, Func<T, string> format)
    {
        VBuffer<T> values = default;
        label.Annotations.GetValue("KeyValues", ref values);
        return values.DenseValues().Select(format).ToArray();
    }
}
