using System.Text.Json;

namespace Microsoft.ML.Peft.Tokenizers;

/// <summary>Parser limits for tokenizer JSON files.</summary>
internal static class JsonLimits
{
    public static JsonDocumentOptions DocumentOptions => new() { MaxDepth = 64, AllowTrailingCommas = false, CommentHandling = JsonCommentHandling.Disallow };

    /// <summary>Parses a whole JSON file; malformed JSON (including bad UTF-8) is a <see cref="TokenizerFormatException"/>.</summary>
    public static JsonDocument Parse(byte[] bytes, string sourceName)
    {
        try
        {
            return JsonDocument.Parse(bytes, DocumentOptions);
        }
        catch (JsonException e)
        {
            throw new TokenizerFormatException(sourceName, $"line {e.LineNumber + 1}, byte {e.BytePositionInLine}", "malformed JSON: " + e.Message, e);
        }
        catch (ArgumentException e)
        {
            throw new TokenizerFormatException(sourceName, "$", "malformed JSON: " + e.Message, e);
        }
    }
}

/// <summary>
/// A JSON value with the path that led to it (e.g. <c>model.merges[3]</c>) and its file, so that every type or range
/// error names exactly what is wrong and where.
/// </summary>
internal readonly struct JsonCursor
{
    public JsonCursor(JsonElement element, string path, string source)
    {
        Element = element;
        Path = path;
        Source = source;
    }

    public JsonElement Element { get; }

    public string Path { get; }

    public string Source { get; }

    public JsonValueKind Kind => Element.ValueKind;

    public TokenizerFormatException Error(string problem) => new(Source, Path, problem);

    /// <summary>A required member of an object.</summary>
    public JsonCursor Get(string name) =>
        Optional(name) ?? throw new TokenizerFormatException(Source, Child(name), "missing (or null)");

    /// <summary>A member of an object, or null when absent or JSON null.</summary>
    public JsonCursor? Optional(string name)
    {
        RequireKind(JsonValueKind.Object);
        return Element.TryGetProperty(name, out var value) && value.ValueKind != JsonValueKind.Null
            ? new JsonCursor(value, Child(name), Source)
            : null;
    }

    public string GetString()
    {
        RequireKind(JsonValueKind.String);
        try
        {
            return Element.GetString()!;
        }
        catch (InvalidOperationException e)
        {
            throw new TokenizerFormatException(Source, Path, "string is not valid UTF-8", e);
        }
    }

    public int GetInt32()
    {
        RequireKind(JsonValueKind.Number);
        return Element.TryGetInt32(out int value) ? value : throw Error($"{Element.GetRawText()} is not a 32-bit integer");
    }

    public bool GetBoolean()
    {
        if (Element.ValueKind is JsonValueKind.True or JsonValueKind.False) return Element.GetBoolean();
        throw Error($"expected true or false, got {Element.ValueKind}");
    }

    public string? OptionalString(string name) => Optional(name)?.GetString();

    public bool OptionalBoolean(string name, bool fallback) => Optional(name)?.GetBoolean() ?? fallback;

    public int? OptionalInt32(string name) => Optional(name)?.GetInt32();

    /// <summary>The elements of an array, each with its indexed path.</summary>
    public IEnumerable<JsonCursor> Items()
    {
        RequireKind(JsonValueKind.Array);
        int i = 0;
        foreach (var item in Element.EnumerateArray()) yield return new JsonCursor(item, $"{Path}[{i++}]", Source);
    }

    /// <summary>The members of an object, each with its path.</summary>
    public IEnumerable<(string Name, JsonCursor Value)> Members()
    {
        RequireKind(JsonValueKind.Object);
        foreach (var property in Element.EnumerateObject())
        {
            string name;
            try
            {
                name = property.Name;
            }
            catch (InvalidOperationException e)
            {
                throw new TokenizerFormatException(Source, Path, "a member name is not valid UTF-8", e);
            }
            yield return (name, new JsonCursor(property.Value, Child(name), Source));
        }
    }

    public void RequireKind(JsonValueKind kind)
    {
        if (Element.ValueKind != kind) throw Error($"expected {Describe(kind)}, got {Describe(Element.ValueKind)}");
    }

    private string Child(string name) => Path == "$" ? name : $"{Path}.{name}";

    private static string Describe(JsonValueKind kind) => kind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => kind.ToString(),
    };
}

/// <summary>Reads a JSON object of token → id into a <see cref="TokenVocabulary"/>.</summary>
internal static class JsonVocabulary
{
    public static TokenVocabulary Read(JsonElement element, string sourceName, string path)
    {
        var cursor = new JsonCursor(element, path, sourceName);
        var entries = new List<KeyValuePair<string, int>>();
        foreach (var (name, value) in cursor.Members()) entries.Add(new(name, value.GetInt32()));
        if (entries.Count == 0) throw cursor.Error("the vocabulary is empty");
        return TokenVocabulary.Build(entries, sourceName, path);
    }
}
