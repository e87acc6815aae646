using System.Globalization;
using System.Text.Json;

namespace Microsoft.ML.Peft.Models.Configs;

/// <summary>
/// Typed reads of config.json fields with Hugging Face defaults: a missing field or JSON <c>null</c> yields the
/// default; a present field of the wrong type is an error naming the file and field (never a silent default).
/// </summary>
internal sealed class ConfigJson
{
    private readonly JsonElement _root;

    public ConfigJson(JsonElement root, string path)
    {
        _root = root;
        Path = path;
    }

    public string Path { get; }

    /// <summary>Whether the field is written at all (even as null).</summary>
    public bool Present(string name) => _root.TryGetProperty(name, out _);

    /// <summary>Whether the field is written with a non-null value.</summary>
    public bool Has(string name) => _root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null;

    public JsonElement? Get(string name) =>
        _root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? v : null;

    public int Int(string name, int defaultValue) => IntOrNull(name) ?? defaultValue;

    public int? IntOrNull(string name, int? defaultValue = null)
    {
        if (Get(name) is not { } v) return defaultValue;
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw Wrong(name, "an integer", v);
    }

    public double Double(string name, double defaultValue) => DoubleOrNull(name) ?? defaultValue;

    public double? DoubleOrNull(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d) ? d : throw Wrong(name, "a number", v);
    }

    public bool Bool(string name, bool defaultValue)
    {
        if (Get(name) is not { } v) return defaultValue;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Wrong(name, "true or false", v),
        };
    }

    public string String(string name, string defaultValue) => StringOrNull(name) ?? defaultValue;

    public string? StringOrNull(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw Wrong(name, "a string", v);
    }

    /// <summary>An id that may be one integer or a list of integers (e.g. Llama 3's <c>eos_token_id</c>).</summary>
    public IReadOnlyList<int> IntOrIntList(string name, IReadOnlyList<int> defaultValue)
    {
        if (Get(name) is not { } v) return defaultValue;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int single)) return [single];
        if (v.ValueKind == JsonValueKind.Array)
        {
            var list = new List<int>();
            foreach (var item in v.EnumerateArray())
                list.Add(item.ValueKind == JsonValueKind.Number && item.TryGetInt32(out int i) ? i : throw Wrong(name, "an integer or a list of integers", v));
            return list;
        }
        throw Wrong(name, "an integer or a list of integers", v);
    }

    public IReadOnlyList<string> StringList(string name)
    {
        if (Get(name) is not { } v) return [];
        if (v.ValueKind != JsonValueKind.Array) throw Wrong(name, "a list of strings", v);
        return v.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString()! : throw Wrong(name, "a list of strings", v)).ToList();
    }

    /// <summary>A JSON object of string keys that are integers (e.g. <c>id2label</c>), or null when absent.</summary>
    public Dictionary<int, string>? IntKeyedStrings(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Wrong(name, "an object", v);
        var result = new Dictionary<int, string>();
        foreach (var p in v.EnumerateObject())
        {
            if (!int.TryParse(p.Name, NumberStyles.Integer, CultureInfo.InvariantCulture, out int key))
                throw Error(name, $"key '{p.Name}' is not an integer");
            if (p.Value.ValueKind != JsonValueKind.String) throw Error(name, $"value of '{p.Name}' must be a string");
            if (!result.TryAdd(key, p.Value.GetString()!)) throw Error(name, $"label id {key} appears twice");
        }
        return result;
    }

    /// <summary>A JSON object mapping strings to integers (e.g. <c>label2id</c>), or null when absent.</summary>
    public Dictionary<string, int>? StringKeyedInts(string name)
    {
        if (Get(name) is not { } v) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Wrong(name, "an object", v);
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id))
                throw Error(name, $"value of '{p.Name}' must be an integer");
            result[p.Name] = id;
        }
        return result;
    }

    /// <summary>A nested object as its own reader (e.g. <c>rope_scaling</c>), or null when absent.</summary>
    public ConfigJson? Object(string name)
    {
        if (Get(name) is not { } v) return null;
        return v.ValueKind == JsonValueKind.Object ? new ConfigJson(v, Path) : throw Wrong(name, "an object", v);
    }

    public ModelConfigException Error(string field, string detail) => new(Path, field, detail);

    private ModelConfigException Wrong(string name, string expected, JsonElement actual)
    {
        string raw = actual.GetRawText();
        if (raw.Length > 60) raw = raw[..60] + "…";
        return Error(name, $"must be {expected}, found {raw}");
    }
}
