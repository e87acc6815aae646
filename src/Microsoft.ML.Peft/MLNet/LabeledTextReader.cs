using Microsoft.ML.Data;

namespace Microsoft.ML.Peft;

/// <summary>Labeled texts read from an <see cref="IDataView"/>: texts (null read as empty) and 0-based class indices.</summary>
internal sealed class LabeledTexts
{
    public List<string> Sentence1 { get; } = [];

    /// <summary>Second texts, or null for single-sentence tasks.</summary>
    public List<string>? Sentence2 { get; init; }

    public List<int> Labels { get; } = [];

    /// <summary>Rows skipped because their label was missing (key 0).</summary>
    public long SkippedMissingLabel { get; set; }

    public int Count => Labels.Count;

    /// <summary>Reads every row of <paramref name="data"/> (one cursor pass over the needed columns).</summary>
    public static LabeledTexts Read(IDataView data, BoundColumns columns, ClassificationKind kind)
    {
        ArgumentNullException.ThrowIfNull(data);
        var label = columns.Label ?? throw new ArgumentException("a label column is needed", nameof(columns));
        var result = new LabeledTexts { Sentence2 = columns.Sentence2 is null ? null : [] };
        using var cursor = data.GetRowCursor(columns.Texts.Append(label));
        var text1 = cursor.GetGetter<ReadOnlyMemory<char>>(columns.Sentence1);
        var text2 = columns.Sentence2 is { } s2 ? cursor.GetGetter<ReadOnlyMemory<char>>(s2) : null;
        ValueGetter<uint>? keyGetter = kind == ClassificationKind.Multiclass ? cursor.GetGetter<uint>(label) : null;
        ValueGetter<bool>? boolGetter = kind == ClassificationKind.Binary ? cursor.GetGetter<bool>(label) : null;
        uint key = 0;
        bool flag = false;
        while (cursor.MoveNext())
        {
            int classIndex;
            if (keyGetter is not null)
            {
                keyGetter(ref key);
                if (key == 0)
                {
                    result.SkippedMissingLabel++;
                    continue;
                }
                classIndex = (int)key - 1;
            }
            else
            {
                boolGetter!(ref flag);
                classIndex = flag ? 1 : 0;
            }
            result.Labels.Add(classIndex);
            result.Sentence1.Add(ReadText(text1));
            if (text2 is not null) result.Sentence2!.Add(ReadText(text2));
        }
        return result;
    }

    /// <summary>A text cell as a string; a missing (default) value reads as the empty string.</summary>
    public static string ReadText(ValueGetter<ReadOnlyMemory<char>> getter)
    {
        ReadOnlyMemory<char> value = default;
        getter(ref value);
        return value.IsEmpty ? "" : value.ToString();
    }
}
