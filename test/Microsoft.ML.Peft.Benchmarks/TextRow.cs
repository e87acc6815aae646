namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>One labelled sentence in the columns the LoRA text trainers read by default (Sentence1, Label).</summary>
internal sealed class TextRow
{
    public string Sentence1 { get; set; } = "";

    public bool Label { get; set; }

    /// <summary>The rows of a GLUE-style TSV (header line; sentence, then label 0/1).</summary>
    public static IEnumerable<TextRow> ReadTsv(string path) =>
        File.ReadLines(path).Skip(1).Select(line => line.Split('\t')).Where(f => f.Length >= 2)
            .Select(f => new TextRow { Sentence1 = f[0], Label = f[1].Trim() == "1" });
}
