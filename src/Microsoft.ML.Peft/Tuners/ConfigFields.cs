using System.Globalization;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// Typed, consuming reads of one adapter_config.json object. A missing key or JSON null yields the default; a value
/// of the wrong type throws <see cref="PeftConfigException"/> naming the file and key. Keys never read stay in
/// <see cref="Remaining"/> so a config can be written back without losing fields this library does not model.
/// </summary>
internal sealed class ConfigFields
{
    private readonly Dictionary<string, object?> values;

    public ConfigFields(Dictionary<string, object?> values, string source)
    {
        this.values = new Dictionary<string, object?>(values, StringComparer.Ordinal);
        Source = source;
    }

    /// <summary>The file (or "&lt;json&gt;") the values came from, for messages.</summary>
    public string Source { get; }

    /// <summary>Keys not consumed yet, with their values.</summary>
    public IReadOnlyDictionary<string, object?> Remaining => values;

    /// <summary>Removes and returns a raw value (null when absent).</summary>
    public object? Take(string key)
    {
        values.Remove(key, out var v);
        return v;
    }

    public string? String(string key)
    {
        var v = Take(key);
        return v switch
        {
            null => null,
            string s => s,
            _ => throw Wrong(key, "a string", v),
        };
    }

    public bool Bool(string key, bool defaultValue)
    {
        var v = Take(key);
        return v switch
        {
            null => defaultValue,
            bool b => b,
            _ => throw Wrong(key, "true or false", v),
        };
    }

    public int Int(string key, int defaultValue) => Take(key) is { } v ? ToInt(key, v) : defaultValue;

    /// <summary>An integer, or null when absent or JSON null.</summary>
    public int? NullableInt(string key) => Take(key) is { } v ? ToInt(key, v) : null;

    public double Double(string key, double defaultValue) => Take(key) is { } v ? ToDouble(key, v) : defaultValue;

    /// <summary>A string or a list of strings (both null when absent).</summary>
    public (string? Single, List<string>? List) StringOrList(string key)
    {
        var v = Take(key);
        return v switch
        {
            null => (null, null),
            string s => (s, null),
            IReadOnlyList<object?> list => (null, list.Select(item => item as string ?? throw Wrong(key, "a list of strings", v)).ToList()),
            _ => throw Wrong(key, "a string or a list of strings", v),
        };
    }

    /// <summary>target_modules-style value: a regex string, a list of names, or null when absent.</summary>
    public ModuleSelector? Selector(string key) => StringOrList(key) switch
    {
        (null, null) => null,
        (string pattern, _) => ModuleSelector.FromPattern(pattern),
        (_, var list) => ModuleSelector.FromNames(list!),
    };

    /// <summary>A string or a list of strings, as a list (null when absent).</summary>
    public IList<string>? StringList(string key) => StringOrList(key) switch
    {
        (null, null) => null,
        (string single, _) => [single],
        (_, var list) => list,
    };

    /// <summary>An integer or a list of integers, as a list (null when absent).</summary>
    public List<int>? IntOrList(string key)
    {
        var v = Take(key);
        return v switch
        {
            null => null,
            IReadOnlyList<object?> list => list.Select(item => item is null ? throw Wrong(key, "a list of integers", v) : ToInt(key, item)).ToList(),
            _ => [ToInt(key, v)],
        };
    }

    /// <summary>An object whose values are numbers, in file order (empty when absent).</summary>
    public List<KeyValuePair<string, double>> NumberMap(string key)
    {
        var v = Take(key);
        return v switch
        {
            null => [],
            IReadOnlyDictionary<string, object?> map => map.Select(kv => KeyValuePair.Create(kv.Key, kv.Value is null ? throw Wrong(key, "an object of numbers", v) : ToDouble(key, kv.Value))).ToList(),
            _ => throw Wrong(key, "an object mapping names to numbers", v),
        };
    }

    /// <summary>Throws when a key this library does not implement holds anything but its PEFT default.</summary>
    public void RequireDefault(string key, object? defaultValue, string feature)
    {
        if (!values.TryGetValue(key, out var v) || IsDefault(v, defaultValue)) return;
        throw new PeftConfigException($"{Source}: '{key}' = {PythonJson.Serialize(v).ReplaceLineEndings(" ")} is not supported ({feature} is not implemented); only the default {PythonJson.Serialize(defaultValue)} is accepted");
    }

    public PeftConfigException Wrong(string key, string expected, object? value) =>
        new($"{Source}: '{key}' must be {expected}, got {PythonJson.Serialize(value).ReplaceLineEndings(" ")}");

    private static bool IsDefault(object? value, object? defaultValue) => (value, defaultValue) switch
    {
        (null, null) => true,
        (bool a, bool b) => a == b,
        (string a, string b) => a == b,
        (IReadOnlyDictionary<string, object?> m, IReadOnlyDictionary<string, object?> d) => m.Count == 0 && d.Count == 0,
        (IReadOnlyList<object?> l, IReadOnlyList<object?> d) => l.Count == 0 && d.Count == 0,
        _ => false,
    };

    private int ToInt(string key, object value)
    {
        bool number = value is PythonJsonNumber or int or long or double;
        double d = number ? ToDouble(key, value) : double.NaN;
        if (!number || d != Math.Floor(d) || d < int.MinValue || d > int.MaxValue) throw Wrong(key, "an integer", value);
        return (int)d;
    }

    private double ToDouble(string key, object value) => value switch
    {
        PythonJsonNumber n when double.TryParse(n.RawText, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) && double.IsFinite(d) => d,
        int i => i,
        long l => l,
        double d when double.IsFinite(d) => d,
        _ => throw Wrong(key, "a number", value),
    };
}
