using System.IO.Compression;
using System.Text.Json;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// Reads the fixtures written by build/reference/tokenizer_reference.py: gzip'd JSON lines, one record per corpus text,
/// in the order of corpus.jsonl.gz.
/// </summary>
internal static class TokenizerFixtures
{
    private static readonly Lazy<IReadOnlyList<string>> s_corpus = new(() =>
        [.. ReadRecords("corpus.jsonl.gz").Select(r => r.GetProperty("text").GetString()!)]);

    /// <summary>The test sentences (SST-2 dev, CoLA dev, MRPC dev, MR, AG News, TREC and edge cases).</summary>
    public static IReadOnlyList<string> Corpus => s_corpus.Value;

    public static string Path(params string[] parts) => TestPaths.Fixture(["tokenizers", .. parts]);

    public static List<JsonElement> ReadRecords(string name)
    {
        using var file = File.OpenRead(Path(name));
        using var gzip = new GZipStream(file, CompressionMode.Decompress);
        using var reader = new StreamReader(gzip);
        var records = new List<JsonElement>();
        while (reader.ReadLine() is { } line)
        {
            records.Add(JsonDocument.Parse(line).RootElement.Clone());
        }
        return records;
    }

    public static int[] Ints(this JsonElement record, string property) =>
        [.. record.GetProperty(property).EnumerateArray().Select(e => e.GetInt32())];

    public static string Str(this JsonElement record, string property) => record.GetProperty(property).GetString()!;

    /// <summary>Fails with the first few mismatches, each with its corpus index and text, instead of one opaque diff.</summary>
    public static void AssertAllEqual(int count, Func<int, (string Expected, string Actual)> compare, string what)
    {
        var failures = new List<string>();
        int differing = 0;
        for (int i = 0; i < count; i++)
        {
            var (expected, actual) = compare(i);
            if (expected == actual) continue;
            if (++differing <= 5) failures.Add($"#{i} {JsonSerializer.Serialize(Corpus[i])}\n  expected {expected}\n  actual   {actual}");
        }
        if (differing > 0) Assert.Fail($"{what}: {differing} of {count} differ\n{string.Join("\n", failures)}");
    }

    public static string Join(IEnumerable<int> ids) => string.Join(' ', ids);
}
