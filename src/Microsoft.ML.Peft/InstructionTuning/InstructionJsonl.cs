using System.Text.Json;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// Reads Alpaca-style JSON Lines: one object per line with string fields <c>"instruction"</c>, <c>"output"</c> and
/// optionally <c>"input"</c> (missing or null = ""). Blank lines are skipped; other fields are ignored. Every problem is
/// reported with the file and 1-based line number before any training starts.
/// </summary>
public static class InstructionJsonl
{
    /// <summary>Reads every record of <paramref name="path"/>.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">A line is not a JSON object, or a field is missing or not a string.</exception>
    public static IReadOnlyList<InstructionExample> Read(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"instruction data file not found: {path}", path);
        var examples = new List<InstructionExample>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line)) continue;
            examples.Add(Parse(line, path, lineNumber));
        }
        if (examples.Count == 0) throw new InvalidDataException($"{path}: no records (expected one JSON object per line with \"instruction\" and \"output\")");
        return examples;
    }

    /// <summary>
    /// The records as an <see cref="IDataView"/> with Text columns "Instruction", "Input" and "Output" (the default
    /// column names of <see cref="CausalLmFineTuningEstimator.Options"/>).
    /// </summary>
    public static IDataView ToDataView(MLContext mlContext, IEnumerable<InstructionExample> examples)
    {
        ArgumentNullException.ThrowIfNull(mlContext);
        ArgumentNullException.ThrowIfNull(examples);
        return mlContext.Data.LoadFromEnumerable(examples.Select(e => new InstructionRow { Instruction = e.Instruction, Input = e.Input, Output = e.Output }).ToList());
    }

    /// <summary>Reads <paramref name="path"/> (see <see cref="Read"/>) into an <see cref="IDataView"/> (see <see cref="ToDataView"/>).</summary>
    public static IDataView Load(MLContext mlContext, string path) => ToDataView(mlContext, Read(path));

    private static InstructionExample Parse(string line, string path, int lineNumber)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}:{lineNumber}: not valid JSON ({e.Message})", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"{path}:{lineNumber}: expected a JSON object with \"instruction\" and \"output\", found a {root.ValueKind}");
            return new InstructionExample(
                Field(root, "instruction", required: true, path, lineNumber),
                Field(root, "input", required: false, path, lineNumber),
                Field(root, "output", required: true, path, lineNumber));
        }
    }

    private static string Field(JsonElement root, string name, bool required, string path, int lineNumber)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            if (required) throw new InvalidDataException($"{path}:{lineNumber}: the field \"{name}\" is missing");
            return "";
        }
        if (value.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{path}:{lineNumber}: the field \"{name}\" must be a string, found a {value.ValueKind}");
        return value.GetString()!;
    }

    /// <summary>The row type of <see cref="ToDataView"/>.</summary>
    private sealed class InstructionRow
    {
        public string Instruction { get; set; } = "";

        public string Input { get; set; } = "";

        public string Output { get; set; } = "";
    }
}
