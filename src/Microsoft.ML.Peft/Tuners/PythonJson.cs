using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Peft.Quantization;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// Writes JSON byte-for-byte as Python's <c>json.dumps(obj, indent=2, sort_keys=True)</c> — the call PEFT uses for
/// adapter_config.json — and reads JSON back into the same value model, so a config written by PEFT and re-saved
/// here differs only where a value was changed.
/// </summary>
/// <remarks>
/// Values are <c>null</c>, <see cref="bool"/>, <see cref="int"/>/<see cref="long"/>, <see cref="double"/> (written as
/// Python's <c>repr(float)</c>: "0.0", "0.05", "1e-05"), <see cref="PythonJsonNumber"/> (a number kept verbatim as
/// read), <see cref="string"/>, <c>IReadOnlyList&lt;object?&gt;</c> and <c>IReadOnlyDictionary&lt;string, object?&gt;</c>.
/// Python's layout: objects and non-empty arrays put one member per line indented by two spaces, items are separated
/// by "," at line end, keys by ": ", empty containers are "[]" and "{}", non-ASCII and control characters are escaped
/// as \uXXXX (ensure_ascii), and there is no trailing newline.
/// </remarks>
internal static class PythonJson
{
    /// <summary>A number as Python would have written the config's value: an int when integral (PEFT's int-typed alphas), else a float.</summary>
    public static object Number(double value) =>
        value == Math.Floor(value) && Math.Abs(value) < 1e15 ? (object)(long)value : value;

    /// <summary>Serialises <paramref name="value"/> as json.dumps(value, indent=2, sort_keys=True).</summary>
    public static string Serialize(object? value)
    {
        var text = new StringBuilder(1024);
        Write(text, value, 0);
        return text.ToString();
    }

    /// <summary>Parses JSON text into the value model (numbers kept verbatim as <see cref="PythonJsonNumber"/>).</summary>
    public static object? Parse(JsonElement element) => element.ValueKind switch
    {
        JsonValueKind.Null or JsonValueKind.Undefined => null,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        JsonValueKind.Number => new PythonJsonNumber(element.GetRawText()),
        JsonValueKind.String => element.GetString(),
        JsonValueKind.Array => element.EnumerateArray().Select(Parse).ToList(),
        JsonValueKind.Object => ParseObject(element),
        _ => throw new JsonException($"unexpected JSON value kind {element.ValueKind}"),
    };

    private static Dictionary<string, object?> ParseObject(JsonElement element)
    {
        var result = new Dictionary<string, object?>(StringComparer.Ordinal);
        foreach (var p in element.EnumerateObject()) result[p.Name] = Parse(p.Value);
        return result;
    }

    private static void Write(StringBuilder text, object? value, int depth)
    {
        switch (value)
        {
            case null:
                text.Append("null");
                break;
            case bool b:
                text.Append(b ? "true" : "false");
                break;
            case int i:
                text.Append(i.ToString(CultureInfo.InvariantCulture));
                break;
            case long l:
                text.Append(l.ToString(CultureInfo.InvariantCulture));
                break;
            case double d:
                text.Append(PythonFloatFormat.Format(d));
                break;
            case PythonJsonNumber n:
                text.Append(n.RawText);
                break;
            case string s:
                WriteString(text, s);
                break;
            case IReadOnlyDictionary<string, object?> map:
                WriteObject(text, map, depth);
                break;
            case IReadOnlyList<object?> list:
                WriteArray(text, list, depth);
                break;
            default:
                throw new ArgumentException($"PythonJson: cannot serialise a {value.GetType().Name}");
        }
    }

    private static void WriteObject(StringBuilder text, IReadOnlyDictionary<string, object?> map, int depth)
    {
        if (map.Count == 0)
        {
            text.Append("{}");
            return;
        }
        text.Append('{');
        bool first = true;
        // sort_keys=True sorts by Python's str ordering, i.e. by code point; ordinal UTF-16 order agrees for the
        // ASCII keys configs use.
        foreach (var key in map.Keys.OrderBy(k => k, StringComparer.Ordinal))
        {
            if (!first) text.Append(',');
            first = false;
            NewLine(text, depth + 1);
            WriteString(text, key);
            text.Append(": ");
            Write(text, map[key], depth + 1);
        }
        NewLine(text, depth);
        text.Append('}');
    }

    private static void WriteArray(StringBuilder text, IReadOnlyList<object?> list, int depth)
    {
        if (list.Count == 0)
        {
            text.Append("[]");
            return;
        }
        text.Append('[');
        for (int i = 0; i < list.Count; i++)
        {
            if (i > 0) text.Append(',');
            NewLine(text, depth + 1);
            Write(text, list[i], depth + 1);
        }
        NewLine(text, depth);
        text.Append(']');
    }

    private static void NewLine(StringBuilder text, int depth) => text.Append('\n').Append(' ', 2 * depth);

    /// <summary>A JSON string as Python's ensure_ascii encoder writes it.</summary>
    private static void WriteString(StringBuilder text, string s)
    {
        text.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': text.Append("\\\""); break;
                case '\\': text.Append("\\\\"); break;
                case '\n': text.Append("\\n"); break;
                case '\r': text.Append("\\r"); break;
                case '\t': text.Append("\\t"); break;
                case '\b': text.Append("\\b"); break;
                case '\f': text.Append("\\f"); break;
                default:
                    if (c < 0x20 || c > 0x7E) text.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else text.Append(c);
                    break;
            }
        }
        text.Append('"');
    }
}

/// <summary>A JSON number kept exactly as written (so re-saving a PEFT file reproduces "16" vs "16.0").</summary>
/// <param name="RawText">The number's JSON text.</param>
internal sealed record PythonJsonNumber(string RawText);
