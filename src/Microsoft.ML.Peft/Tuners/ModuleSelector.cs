using System.Text.RegularExpressions;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>
/// Which modules a PEFT method applies to, with PEFT's semantics for <c>target_modules</c> / <c>exclude_modules</c>:
/// a list of names matches a module whose dotted name equals an entry or ends with "." + entry (so "q_proj" matches
/// "model.layers.0.self_attn.q_proj" but not "model.layers.0.self_attn.xq_proj"); a single string is a regular
/// expression that must match the whole dotted name (Python's <c>re.fullmatch</c>); the string "all-linear"
/// (any case) selects every linear layer except the output layer (see <see cref="IsAllLinear"/>).
/// </summary>
public sealed class ModuleSelector : IEquatable<ModuleSelector>
{
    /// <summary>PEFT's shorthand for every linear layer but the output head.</summary>
    public const string AllLinearShorthand = "all-linear";

    private readonly Regex? regex;

    private ModuleSelector(IReadOnlyList<string>? names, string? pattern)
    {
        Names = names;
        Pattern = pattern;
        if (pattern is not null && !IsAllLinear)
        {
            try
            {
                // (?:...) then \z: the whole name must match, as re.fullmatch; culture-invariant like Python's re.
                regex = new Regex($"^(?:{pattern})\\z", RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw new PeftConfigException($"module pattern '{pattern}' is not a valid regular expression: {e.Message}", e);
            }
        }
    }

    /// <summary>The names or name suffixes, or null for a pattern.</summary>
    public IReadOnlyList<string>? Names { get; }

    /// <summary>The full-match regular expression (or "all-linear"), or null for a name list.</summary>
    public string? Pattern { get; }

    /// <summary>Whether this is the "all-linear" shorthand (resolved against the model at injection).</summary>
    public bool IsAllLinear => Pattern is not null && string.Equals(Pattern, AllLinearShorthand, StringComparison.OrdinalIgnoreCase);

    /// <summary>A list of module names or suffixes (PEFT: a list in target_modules).</summary>
    public static ModuleSelector FromNames(params IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(names);
        var list = names.ToList();
        foreach (var n in list)
        {
            if (string.IsNullOrEmpty(n)) throw new PeftConfigException("module names must be non-empty strings");
        }
        return new ModuleSelector(list, null);
    }

    /// <summary>A regular expression over full dotted names, or "all-linear" (PEFT: a string in target_modules).</summary>
    public static ModuleSelector FromPattern(string pattern)
    {
        ArgumentNullException.ThrowIfNull(pattern);
        return new ModuleSelector(null, pattern);
    }

    /// <summary>Every linear layer but the output head ("all-linear").</summary>
    public static ModuleSelector AllLinear { get; } = new(null, AllLinearShorthand);

    /// <summary>A list of names (same as <see cref="FromNames"/>).</summary>
    public static implicit operator ModuleSelector(string[] names) => FromNames(names);

    /// <summary>A regular expression or "all-linear" (same as <see cref="FromPattern"/>).</summary>
    public static implicit operator ModuleSelector(string pattern) => FromPattern(pattern);

    /// <summary>
    /// Whether <paramref name="moduleName"/> is selected: exact name or "." suffix for a list, full regex match for a
    /// pattern. "all-linear" must be resolved to names first (it depends on the model).
    /// </summary>
    public bool Matches(string moduleName)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        if (IsAllLinear) throw new InvalidOperationException("'all-linear' must be resolved against the model before matching names");
        if (regex is not null) return regex.IsMatch(moduleName);
        return MatchesExactly(moduleName) || MatchesSuffix(moduleName);
    }

    /// <summary>For a name list: whether an entry equals the whole name (PEFT's "specified directly" case).</summary>
    internal bool MatchesExactly(string moduleName) => Names is not null && Names.Contains(moduleName, StringComparer.Ordinal);

    /// <summary>For a name list: whether the name ends with "." + an entry.</summary>
    internal bool MatchesSuffix(string moduleName) =>
        Names is not null && Names.Any(n => moduleName.Length > n.Length && moduleName.EndsWith(n, StringComparison.Ordinal) && moduleName[^(n.Length + 1)] == '.');

    /// <summary>The value as written in adapter_config.json: a list of strings or a string.</summary>
    internal object ToJsonValue() => Names is not null ? Names.Cast<object?>().ToList() : Pattern!;

    /// <inheritdoc/>
    public bool Equals(ModuleSelector? other) =>
        other is not null && Pattern == other.Pattern &&
        (Names is null ? other.Names is null : other.Names is not null && Names.SequenceEqual(other.Names, StringComparer.Ordinal));

    /// <inheritdoc/>
    public override bool Equals(object? obj) => Equals(obj as ModuleSelector);

    /// <inheritdoc/>
    public override int GetHashCode() => Pattern?.GetHashCode(StringComparison.Ordinal) ?? Names!.Count;

    /// <summary>"[q_proj, v_proj]" or the pattern, for messages.</summary>
    public override string ToString() => Names is not null ? $"[{string.Join(", ", Names)}]" : $"'{Pattern}'";
}
