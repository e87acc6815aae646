using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.Cli;

/// <summary>
/// Loads a delimited file with a header (TSV, or CSV with quoting when the name ends in .csv), reading only the named
/// text and label columns, all as text.
/// </summary>
internal static class TabularData
{
    /// <summary>Column names inside the loaded view.</summary>
    public const string Text1 = "Text1", Text2 = "Text2", Label = "Label";

    public static IDataView Load(MLContext ml, string path, string textColumn, string? textColumn2, string labelColumn)
    {
        bool csv = path.EndsWith(".csv", StringComparison.OrdinalIgnoreCase);
        char separator = csv ? ',' : '\t';
        string header = File.ReadLines(path).FirstOrDefault() ?? throw new CommandLineException($"{path} is empty");
        var names = header.Split(separator).Select(n => n.Trim().Trim('"')).ToList();
        int Index(string name) => names.IndexOf(name) is var i and >= 0 ? i
            : throw new CommandLineException($"{path} has no column '{name}' (header: {string.Join(", ", names)})");
        var columns = new List<TextLoader.Column>
        {
            new(Text1, DataKind.String, Index(textColumn)),
            new(Label, DataKind.String, Index(labelColumn)),
        };
        if (textColumn2 is not null) columns.Add(new TextLoader.Column(Text2, DataKind.String, Index(textColumn2)));
        return ml.Data.LoadFromTextFile(path, [.. columns], separatorChar: separator, hasHeader: true, allowQuoting: csv, trimWhitespace: true);
    }
}
