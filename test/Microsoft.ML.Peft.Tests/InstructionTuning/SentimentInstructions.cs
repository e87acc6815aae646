using Microsoft.ML.Peft.InstructionTuning;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

/// <summary>A tiny instruction task from real SST-2 sentences: answer "positive" or "negative" in words.</summary>
internal static class SentimentInstructions
{
    public const string Question = "Is this review positive or negative?";

    /// <summary>A short template (the Alpaca preamble alone is ~150 tokens for stories260K's 512-piece vocabulary).</summary>
    public static PromptTemplate Template { get; } = new("Review: {input}\n{instruction}\nAnswer:");

    /// <summary>Rows <paramref name="skip"/>.. of the SST-2 train split whose sentence is at most 60 characters.</summary>
    public static List<InstructionExample> Rows(int count, int skip = 0) =>
        File.ReadLines(Path.Combine(TestPaths.Data, "sst2", "train.tsv"))
            .Skip(1)
            .Select(line => line.Split('\t'))
            .Where(f => f[0].Trim().Length <= 60)
            .Skip(skip)
            .Take(count)
            .Select(f => new InstructionExample(Question, f[0].Trim(), f[1] == "1" ? "positive" : "negative"))
            .ToList();

    public static IDataView View(MLContext ml, int count, int skip = 0) => InstructionJsonl.ToDataView(ml, Rows(count, skip));
}
