using System.Collections;
using System.Reflection;
using Microsoft.ML.SearchSpace.Option;

namespace Microsoft.ML.SearchSpace;

/// <summary>
/// A named set of options (itself an option, so search spaces nest). Its feature space is the concatenation of the
/// options' feature spaces in ordinal key order; a sample is an object parameter with one member per key.
/// </summary>
public class SearchSpace : OptionBase, IDictionary<string, OptionBase>
{
    private readonly Dictionary<string, OptionBase> _options = new(StringComparer.Ordinal);
    private readonly Parameter? _defaultOption;

    /// <summary>An empty search space.</summary>
    public SearchSpace()
    {
    }

    /// <summary>The options declared by [Range], [Choice], [BooleanChoice] and [NestOption] on the public fields and
    /// properties of <paramref name="typeInfo"/>; <paramref name="defaultOption"/> supplies the members that are not searched.</summary>
    protected SearchSpace(Type typeInfo, Parameter? defaultOption = null)
    {
        ArgumentNullException.ThrowIfNull(typeInfo);
        foreach (var (key, option) in OptionsOf(typeInfo))
            _options.Add(key, option);
        _defaultOption = defaultOption;
    }

    private static IEnumerable<KeyValuePair<string, OptionBase>> OptionsOf(Type type)
    {
        var members = type.GetFields(BindingFlags.Public | BindingFlags.Instance).Cast<MemberInfo>()
            .Concat(type.GetProperties(BindingFlags.Public | BindingFlags.Instance));
        foreach (var member in members)
        {
            var attributes = member.GetCustomAttributes(inherit: false)
                .Where(a => a is RangeAttribute or ChoiceAttribute or BooleanChoiceAttribute or NestOptionAttribute).ToArray();
            if (attributes.Length == 0)
                continue;
            if (attributes.Length > 1)
                throw new ArgumentException($"{member.Name} can only define one of the choice|range|option attribute");
            var memberType = member is FieldInfo f ? f.FieldType : ((PropertyInfo)member).PropertyType;
            OptionBase option = attributes[0] switch
            {
                RangeAttribute range => CheckRange(range, member.Name, memberType),
                ChoiceAttribute choice => choice.Option,
                BooleanChoiceAttribute boolean => memberType == typeof(bool)
                    ? boolean.Option
                    : throw new ArgumentException($"[Option:{member.Name}] BooleanChoice can only apply to property or field which type is bool"),
                _ => Nested(memberType),
            };
            yield return new KeyValuePair<string, OptionBase>(member.Name, option);
        }
    }

    private static OptionBase CheckRange(RangeAttribute range, string name, Type memberType)
    {
        if (range.Option is not UniformIntOption && (memberType == typeof(int) || memberType == typeof(short) || memberType == typeof(long)))
            throw new ArgumentException($"[Option:{name}] UniformDoubleOption or UniformSingleOption can't apply to property or field which type is int or short or long");
        return range.Option;
    }

    private static SearchSpace Nested(Type type)
    {
        var nested = new SearchSpace();
        foreach (var (key, option) in OptionsOf(type))
            nested.Add(key, option);
        return nested;
    }

    private IEnumerable<KeyValuePair<string, OptionBase>> Ordered => _options.OrderBy(kv => kv.Key, StringComparer.Ordinal);

    /// <summary>The options' default feature vectors, concatenated in key order.</summary>
    public override double[] Default => Ordered.SelectMany(kv => kv.Value.Default ?? new double[kv.Value.FeatureSpaceDim]).ToArray();

    /// <summary>The total number of feature dimensions.</summary>
    public override int FeatureSpaceDim => _options.Values.Sum(o => o.FeatureSpaceDim);

    /// <summary>The options' steps, concatenated in key order.</summary>
    public override int?[] Step => Ordered.SelectMany(kv => kv.Value.Step).ToArray();

    /// <summary>An object parameter with one member per key, sampled from consecutive slices of <paramref name="feature"/>;
    /// members of the default option that are not searched are kept.</summary>
    public override Parameter SampleFromFeatureSpace(double[] feature)
    {
        ArgumentNullException.ThrowIfNull(feature);
        if (feature.Length != FeatureSpaceDim)
            throw new ArgumentException($"input feature doesn't match: expected {FeatureSpaceDim} values, got {feature.Length}.", nameof(feature));
        var result = Parameter.CreateNestedParameter();
        int offset = 0;
        foreach (var (key, option) in Ordered)
        {
            result[key] = option.SampleFromFeatureSpace(feature.AsSpan(offset, option.FeatureSpaceDim).ToArray());
            offset += option.FeatureSpaceDim;
        }
        return _defaultOption == null ? result : Merge(_defaultOption, result);
    }

    /// <summary>The concatenated feature vectors of the members of <paramref name="parameter"/>, in key order.</summary>
    public override double[] MappingToFeatureSpace(Parameter parameter)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        var result = new List<double>(FeatureSpaceDim);
        foreach (var (key, option) in Ordered)
            result.AddRange(option.MappingToFeatureSpace(parameter[key]));
        return result.ToArray();
    }

    /// <summary>Objects merge member by member (right wins); any other right value replaces the left one.</summary>
    private static Parameter Merge(Parameter? left, Parameter? right)
    {
        if (right == null)
            return left!;
        if (left == null || left.ParameterType != ParameterType.Object || right.ParameterType != ParameterType.Object)
            return right;
        var merged = Parameter.CreateNestedParameter();
        foreach (var key in left.Keys.Concat(right.Keys).Distinct())
            merged[key] = Merge(left.TryGetValue(key, out var l) ? l : null, right.TryGetValue(key, out var r) ? r : null);
        return merged;
    }

    /// <summary>The keys.</summary>
    public ICollection<string> Keys => _options.Keys;

    /// <summary>The options.</summary>
    public ICollection<OptionBase> Values => _options.Values;

    /// <summary>The number of options.</summary>
    public int Count => _options.Count;

    /// <summary>False.</summary>
    public bool IsReadOnly => false;

    /// <summary>The option named <paramref name="key"/>.</summary>
    public OptionBase this[string key]
    {
        get => _options[key];
        set => _options[key] = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <inheritdoc/>
    public void Add(string key, OptionBase value) => _options.Add(key, value ?? throw new ArgumentNullException(nameof(value)));

    /// <inheritdoc/>
    public void Add(KeyValuePair<string, OptionBase> item) => Add(item.Key, item.Value);

    /// <inheritdoc/>
    public void Clear() => _options.Clear();

    /// <inheritdoc/>
    public bool Contains(KeyValuePair<string, OptionBase> item) => ((ICollection<KeyValuePair<string, OptionBase>>)_options).Contains(item);

    /// <inheritdoc/>
    public bool ContainsKey(string key) => _options.ContainsKey(key);

    /// <inheritdoc/>
    public void CopyTo(KeyValuePair<string, OptionBase>[] array, int arrayIndex) => ((ICollection<KeyValuePair<string, OptionBase>>)_options).CopyTo(array, arrayIndex);

    /// <inheritdoc/>
    public bool Remove(string key) => _options.Remove(key);

    /// <inheritdoc/>
    public bool Remove(KeyValuePair<string, OptionBase> item) => ((ICollection<KeyValuePair<string, OptionBase>>)_options).Remove(item);

    /// <inheritdoc/>
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out OptionBase value) => _options.TryGetValue(key, out value);

    /// <inheritdoc/>
    public IEnumerator<KeyValuePair<string, OptionBase>> GetEnumerator() => _options.GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>The search space declared by the attributes of <typeparamref name="T"/>; samples convert to <typeparamref name="T"/>.</summary>
public sealed class SearchSpace<T> : SearchSpace
    where T : class, new()
{
    /// <summary>The search space of <typeparamref name="T"/>.</summary>
    public SearchSpace()
        : base(typeof(T))
    {
    }

    /// <summary>The search space of <typeparamref name="T"/>; members of <paramref name="defaultOption"/> that are not searched are kept in samples.</summary>
    public SearchSpace(T defaultOption)
        : base(typeof(T), Parameter.FromObject(defaultOption))
    {
    }

    /// <summary>The sample at <paramref name="feature"/> as a <typeparamref name="T"/>.</summary>
    public new T SampleFromFeatureSpace(double[] feature) => base.SampleFromFeatureSpace(feature).AsType<T>();

    /// <summary>The feature vector of <paramref name="input"/>.</summary>
    public double[] MappingToFeatureSpace(T input) => MappingToFeatureSpace(Parameter.FromObject(input));
}
