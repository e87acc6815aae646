using Microsoft.ML.Data;

namespace Microsoft.ML.Internal;

/// <summary>A resolved text-loader column: its type and the source field indices it reads.</summary>
internal sealed class TextColumnInfo
{
    private TextColumnInfo(string name, DataViewType type, PrimitiveDataViewType itemType, TextLoader.Range[] ranges, bool isVector)
    {
        Name = name;
        Type = type;
        ItemType = itemType;
        Ranges = ranges;
        IsVector = isVector;
    }

    public string Name { get; }

    public DataViewType Type { get; }

    public PrimitiveDataViewType ItemType { get; }

    public TextLoader.Range[] Ranges { get; }

    public bool IsVector { get; }

    public static TextColumnInfo Create(TextLoader.Column column)
    {
        ArgumentNullException.ThrowIfNull(column);
        if (string.IsNullOrEmpty(column.Name))
            throw new ArgumentException("A TextLoader column needs a name.", nameof(column));
        var ranges = column.Source is { Length: > 0 } ? column.Source : throw new ArgumentException($"TextLoader column '{column.Name}' has no source fields.", nameof(column));
        foreach (var range in ranges)
        {
            if (range.VariableEnd || range.AllOtherColumns)
                throw new NotSupportedException($"TextLoader column '{column.Name}': VariableEnd/AllOtherColumns ranges are not supported by the stand-in.");
            if (range.Min < 0 || (range.Max is int max && max < range.Min))
                throw new ArgumentOutOfRangeException(nameof(column), $"TextLoader column '{column.Name}' has an invalid range {range.Min}..{range.Max}.");
        }
        var item = ItemTypeOf(column.DataKind, column.KeyCount, column.Name);
        bool autoEnd = ranges.Any(r => r.Max == null || r.AutoEnd);
        int fields = autoEnd ? 0 : ranges.Sum(r => r.Max!.Value - r.Min + 1);
        bool isVector = autoEnd || fields > 1 || ranges.Any(r => r.ForceVector);
        DataViewType type = isVector ? new VectorDataViewType(item, fields) : item;
        return new TextColumnInfo(column.Name, type, item, ranges, isVector);
    }

    private static PrimitiveDataViewType ItemTypeOf(DataKind kind, KeyCount? keyCount, string name)
    {
        var raw = RawTypeOf(kind);
        if (keyCount != null)
        {
            if (keyCount.Count is not ulong count || count == 0)
                throw new ArgumentException($"TextLoader column '{name}': key columns need a positive KeyCount.");
            return new KeyDataViewType(raw, count);
        }
        return PocoTypes.PrimitiveFor(raw)!;
    }

    public static Type RawTypeOf(DataKind kind) => kind switch
    {
        DataKind.SByte => typeof(sbyte),
        DataKind.Byte => typeof(byte),
        DataKind.Int16 => typeof(short),
        DataKind.UInt16 => typeof(ushort),
        DataKind.Int32 => typeof(int),
        DataKind.UInt32 => typeof(uint),
        DataKind.Int64 => typeof(long),
        DataKind.UInt64 => typeof(ulong),
        DataKind.Single => typeof(float),
        DataKind.Double => typeof(double),
        DataKind.String => typeof(ReadOnlyMemory<char>),
        DataKind.Boolean => typeof(bool),
        DataKind.TimeSpan => typeof(TimeSpan),
        DataKind.DateTime => typeof(DateTime),
        DataKind.DateTimeOffset => typeof(DateTimeOffset),
        _ => throw new ArgumentOutOfRangeException(nameof(kind), $"Unknown DataKind {kind}."),
    };

    public static DataKind KindOf(PrimitiveDataViewType type)
    {
        var raw = type.RawType;
        foreach (DataKind kind in Enum.GetValues<DataKind>())
        {
            if (RawTypeOf(kind) == raw)
                return kind;
        }
        throw new NotSupportedException($"Column type {type} cannot be loaded from text.");
    }

    /// <summary>The source field indices of this column for a line with <paramref name="fieldCount"/> fields.</summary>
    public IEnumerable<int> FieldIndices(int fieldCount)
    {
        foreach (var range in Ranges)
        {
            int last = range.Max ?? fieldCount - 1;
            for (int i = range.Min; i <= last; i++)
                yield return i;
        }
    }
}
