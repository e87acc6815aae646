using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>SST-2 rows as the tests load them (the shared TSV has a header: sentence, label 0/1).</summary>
internal sealed class Sst2Row
{
    [LoadColumn(0)]
    public string Sentence1 { get; set; } = "";

    [LoadColumn(1)]
    public string Label { get; set; } = "";
}

/// <summary>SST-2 with a Boolean label for binary classification.</summary>
internal sealed class Sst2BinaryRow
{
    [LoadColumn(0)]
    public string Sentence1 { get; set; } = "";

    [LoadColumn(1)]
    public bool Label { get; set; }
}

internal static class Sst2
{
    public static string Train => Path.Combine(TestPaths.Data, "sst2", "train.tsv");

    public static string Dev => Path.Combine(TestPaths.Data, "sst2", "dev.tsv");

    /// <summary>The first <paramref name="rows"/> rows of a split (multiclass view: text label).</summary>
    public static IDataView Load(MLContext ml, string path, int rows) =>
        ml.Data.TakeRows(ml.Data.LoadFromTextFile<Sst2Row>(path, hasHeader: true), rows);

    /// <summary>The first <paramref name="rows"/> rows of a split with a Boolean label.</summary>
    public static IDataView LoadBinary(MLContext ml, string path, int rows) =>
        ml.Data.TakeRows(ml.Data.LoadFromTextFile<Sst2BinaryRow>(path, hasHeader: true), rows);
}
