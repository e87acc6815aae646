using System.Collections;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace Microsoft.ML.SearchSpace;

/// <summary>The JSON kind of a <see cref="Parameter"/>.</summary>
public enum ParameterType
{
    /// <summary>A JSON integer.</summary>
    Integer = 0,

    /// <summary>A JSON number.</summary>
    Number = 1,

    /// <summary>A JSON boolean.</summary>
    Bool = 2,

    /// <summary>A JSON string.</summary>
    String = 3,

    /// <summary>A JSON object (a dictionary of parameters).</summary>
    Object = 4,

    /// <summary>A JSON array.</summary>
    Array = 5,
}

/// <summary>
/// A JSON-like value proposed by a tuner: a number, string, bool, array, or an object of named parameters (the
/// dictionary members work only on objects). <see cref="AsType{T}"/> converts it, through System.Text.Json when the
/// stored value is not already a <typeparamref name="T"/>.
/// </summary>
[JsonConverter(typeof(ParameterConverter))]
public sealed class Parameter : IDictionary<string, Parameter>, IEquatable<Parameter>, IEqualityComparer<Parameter>
{
    internal static readonly JsonSerializerOptions SerializerOptions = CreateOptions();

    private readonly object _value;

    private Parameter(object value, ParameterType type)
    {
        _value = value;
        ParameterType = type;
    }

    private static JsonSerializerOptions CreateOptions()
    {
        var options = new JsonSerializerOptions
        {
            WriteIndented = true,
            DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
            IncludeFields = true,
        };
        options.Converters.Add(new JsonStringEnumConverter());
        return options;
    }

    /// <summary>A <see cref="ParameterType.Number"/>.</summary>
    public static Parameter FromDouble(double value) => new(value, ParameterType.Number);

    /// <summary>A <see cref="ParameterType.Number"/>.</summary>
    public static Parameter FromFloat(float value) => new(value, ParameterType.Number);

    /// <summary>An <see cref="ParameterType.Integer"/>.</summary>
    public static Parameter FromLong(long value) => new(value, ParameterType.Integer);

    /// <summary>An <see cref="ParameterType.Integer"/>.</summary>
    public static Parameter FromInt(int value) => new(value, ParameterType.Integer);

    /// <summary>A <see cref="ParameterType.String"/>.</summary>
    public static Parameter FromString(string value) => new(value ?? throw new ArgumentNullException(nameof(value)), ParameterType.String);

    /// <summary>A <see cref="ParameterType.Bool"/>.</summary>
    public static Parameter FromBool(bool value) => new(value, ParameterType.Bool);

    /// <summary>The enum member's name as a <see cref="ParameterType.String"/>.</summary>
    public static Parameter FromEnum<T>(T value)
        where T : struct, Enum
        => FromString(Enum.GetName(value) ?? value.ToString());

    /// <summary>An <see cref="ParameterType.Array"/>.</summary>
    public static Parameter FromIEnumerable<T>(IEnumerable<T> values) => new(values ?? throw new ArgumentNullException(nameof(values)), ParameterType.Array);

    /// <summary>A scalar for numbers, strings, bools, enums and sequences; otherwise an object of the readable and
    /// writable public properties and public fields (null members are skipped).</summary>
    public static Parameter FromObject<T>(T value)
        where T : class
        => FromValue(value ?? throw new ArgumentNullException(nameof(value)));

    private static Parameter FromValue(object value)
    {
        switch (value)
        {
            case Parameter p:
                return p;
            case int i:
                return FromInt(i);
            case long l:
                return FromLong(l);
            case double d:
                return FromDouble(d);
            case float f:
                return FromFloat(f);
            case string s:
                return FromString(s);
            case bool b:
                return FromBool(b);
            case Enum e:
                return FromString(Enum.GetName(e.GetType(), e) ?? e.ToString());
            case IEnumerable sequence:
                return new Parameter(sequence, ParameterType.Array);
        }
        var result = CreateNestedParameter();
        var type = value.GetType();
        foreach (var property in type.GetProperties(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
        {
            if (property.CanRead && property.CanWrite && property.GetIndexParameters().Length == 0 && property.GetValue(value) is { } member)
                result[property.Name] = FromValue(member);
        }
        foreach (var field in type.GetFields(System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance))
        {
            if (!field.IsInitOnly && field.GetValue(value) is { } member)
                result[field.Name] = FromValue(member);
        }
        return result;
    }

    /// <summary>An <see cref="ParameterType.Object"/> holding <paramref name="parameters"/>.</summary>
    public static Parameter CreateNestedParameter(params KeyValuePair<string, Parameter>[] parameters)
    {
        var result = new Parameter(new Dictionary<string, Parameter>(StringComparer.Ordinal), ParameterType.Object);
        foreach (var (key, value) in parameters ?? Array.Empty<KeyValuePair<string, Parameter>>())
            result[key] = value;
        return result;
    }

    internal object Value => _value;

    /// <summary>The JSON kind.</summary>
    public ParameterType ParameterType { get; }

    private Dictionary<string, Parameter> Object
        => ParameterType == ParameterType.Object
            ? (Dictionary<string, Parameter>)_value
            : throw new InvalidOperationException($"parameter is not object type (it is {ParameterType}).");

    /// <summary>The number of members of an object, 1 otherwise.</summary>
    public int Count => ParameterType == ParameterType.Object ? Object.Count : 1;

    /// <summary>False (objects are mutable).</summary>
    public bool IsReadOnly => ((ICollection<KeyValuePair<string, Parameter>>)Object).IsReadOnly;

    /// <summary>The member names of an object.</summary>
    public ICollection<string> Keys => Object.Keys;

    ICollection<Parameter> IDictionary<string, Parameter>.Values => Object.Values;

    /// <summary>The member <paramref name="key"/> of an object.</summary>
    public Parameter this[string key]
    {
        get => Object.TryGetValue(key, out var value) ? value : throw new KeyNotFoundException($"Parameter has no member '{key}' (members: {string.Join(", ", Object.Keys)}).");
        set => Object[key] = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>The value as <typeparamref name="T"/>: directly when it already is one, else via a JSON round trip.</summary>
    public T AsType<T>()
    {
        if (_value is T typed)
            return typed;
        string json = JsonSerializer.Serialize(this, SerializerOptions);
        return JsonSerializer.Deserialize<T>(json, SerializerOptions)!;
    }

    /// <inheritdoc/>
    public void Add(string key, Parameter value) => Object.Add(key, value);

    /// <inheritdoc/>
    public void Add(KeyValuePair<string, Parameter> item) => Object.Add(item.Key, item.Value);

    /// <inheritdoc/>
    public void Clear() => Object.Clear();

    /// <inheritdoc/>
    public bool Contains(KeyValuePair<string, Parameter> item) => ((ICollection<KeyValuePair<string, Parameter>>)Object).Contains(item);

    /// <inheritdoc/>
    public bool ContainsKey(string key) => Object.ContainsKey(key);

    /// <inheritdoc/>
    public void CopyTo(KeyValuePair<string, Parameter>[] array, int arrayIndex) => ((ICollection<KeyValuePair<string, Parameter>>)Object).CopyTo(array, arrayIndex);

    /// <inheritdoc/>
    public bool Remove(string key) => Object.Remove(key);

    /// <inheritdoc/>
    public bool Remove(KeyValuePair<string, Parameter> item) => ((ICollection<KeyValuePair<string, Parameter>>)Object).Remove(item);

    /// <inheritdoc/>
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Parameter value) => Object.TryGetValue(key, out value);

    IEnumerator<KeyValuePair<string, Parameter>> IEnumerable<KeyValuePair<string, Parameter>>.GetEnumerator() => Object.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => Object.GetEnumerator();

    /// <summary>Equal when the JSON forms are equal.</summary>
    public bool Equals(Parameter? other)
        => other is not null && (ReferenceEquals(this, other) || ToJson(this) == ToJson(other));

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is Parameter other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode() => ToJson(this).GetHashCode(StringComparison.Ordinal);

    /// <summary>Equality of two parameters (JSON forms).</summary>
    public bool Equals(Parameter? x, Parameter? y) => x is null ? y is null : x.Equals(y);

    /// <summary>The hash of a parameter's JSON form.</summary>
    public int GetHashCode(Parameter obj) => (obj ?? throw new ArgumentNullException(nameof(obj))).GetHashCode();

    /// <summary>The JSON form (indented).</summary>
    public override string ToString() => JsonSerializer.Serialize(this, SerializerOptions);

    private static string ToJson(Parameter parameter) => JsonSerializer.Serialize(parameter, CompactOptions);

    private static readonly JsonSerializerOptions CompactOptions = new(SerializerOptions) { WriteIndented = false };
}

/// <summary>Reads and writes <see cref="Parameter"/> as plain JSON values.</summary>
internal sealed class ParameterConverter : JsonConverter<Parameter>
{
    public override Parameter Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        switch (reader.TokenType)
        {
            case JsonTokenType.Number:
                if (reader.TryGetInt32(out int i))
                    return Parameter.FromInt(i);
                if (reader.TryGetInt64(out long l))
                    return Parameter.FromLong(l);
                return Parameter.FromDouble(reader.GetDouble());
            case JsonTokenType.String:
                return Parameter.FromString(reader.GetString()!);
            case JsonTokenType.True:
                return Parameter.FromBool(true);
            case JsonTokenType.False:
                return Parameter.FromBool(false);
            case JsonTokenType.StartArray:
                var items = new List<Parameter>();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
                    items.Add(Read(ref reader, typeToConvert, options));
                return Parameter.FromIEnumerable(items);
            case JsonTokenType.StartObject:
                var result = Parameter.CreateNestedParameter();
                while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
                {
                    string key = reader.GetString()!;
                    reader.Read();
                    result[key] = Read(ref reader, typeToConvert, options);
                }
                return result;
            default:
                throw new JsonException($"Cannot read a Parameter from JSON token {reader.TokenType}.");
        }
    }

    public override void Write(Utf8JsonWriter writer, Parameter value, JsonSerializerOptions options)
    {
        switch (value.ParameterType)
        {
            case ParameterType.Object:
                writer.WriteStartObject();
                foreach (var (key, member) in (IEnumerable<KeyValuePair<string, Parameter>>)value)
                {
                    writer.WritePropertyName(key);
                    Write(writer, member, options);
                }
                writer.WriteEndObject();
                break;
            default:
                JsonSerializer.Serialize(writer, value.Value, value.Value.GetType(), options);
                break;
        }
    }
}
