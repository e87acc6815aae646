using System.Globalization;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Peft.Tuners;

/// <summary>Outcome of matching one module name against a config.</summary>
public enum TargetMatch
{
    /// <summary>Not selected by target_modules (or filtered out by layers_to_transform).</summary>
    NotTargeted,

    /// <summary>Selected: the method adapts this module.</summary>
    Targeted,

    /// <summary>Removed by exclude_modules, or part of a modules_to_save module (never adapted, as PEFT).</summary>
    Excluded,
}

/// <summary>
/// PEFT's rules for deciding whether a module is adapted (<c>check_target_module_exists</c> in
/// peft/tuners/tuners_utils.py), shared by every method that has target_modules.
/// </summary>
public static class TargetMatching
{
    private static readonly Regex AnyLayerIndex = new(@"^.*?\.[^.]*\.(\d+)\.", RegexOptions.CultureInvariant);

    /// <summary>
    /// Applies, in PEFT's order: exclude_modules (a list by exact name or "." suffix, a string as full-match regex);
    /// modules_to_save (a module inside or equal to one is never adapted); target_modules (<see cref="ModuleSelector"/>);
    /// then, only for a name-list target matched by suffix, layers_to_transform: the layer index is the first number
    /// that follows "&lt;pattern&gt;." for one of <paramref name="layersPattern"/> (or any "name." when no pattern is
    /// given) and is itself followed by "."; a name without such an index is not targeted.
    /// </summary>
    /// <param name="moduleName">The full dotted module name.</param>
    /// <param name="targets">target_modules, already resolved from "all-linear" to names.</param>
    /// <param name="exclude">exclude_modules, or null.</param>
    /// <param name="modulesToSave">modules_to_save, or null.</param>
    /// <param name="layersToTransform">layers_to_transform, or null/empty for all layers.</param>
    /// <param name="layersPattern">layers_pattern, or null/empty for "any name followed by an index".</param>
    public static TargetMatch Check(
        string moduleName,
        ModuleSelector targets,
        ModuleSelector? exclude = null,
        IReadOnlyList<string>? modulesToSave = null,
        IReadOnlyList<int>? layersToTransform = null,
        IReadOnlyList<string>? layersPattern = null)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        ArgumentNullException.ThrowIfNull(targets);
        if (exclude is not null && exclude.Matches(moduleName)) return TargetMatch.Excluded;
        if (modulesToSave is not null && modulesToSave.Any(m => IsInside(moduleName, m))) return TargetMatch.Excluded;

        if (targets.Names is null) return targets.Matches(moduleName) ? TargetMatch.Targeted : TargetMatch.NotTargeted;
        if (targets.MatchesExactly(moduleName)) return TargetMatch.Targeted;
        if (!targets.MatchesSuffix(moduleName)) return TargetMatch.NotTargeted;
        if (layersToTransform is null || layersToTransform.Count == 0) return TargetMatch.Targeted;

        int? index = LayerIndex(moduleName, layersPattern);
        return index is { } i && layersToTransform.Contains(i) ? TargetMatch.Targeted : TargetMatch.NotTargeted;
    }

    /// <summary>
    /// The layer index PEFT reads from a module name (the lazy <c>.*?\.{pattern}\.(\d+)\.</c> match), or null.
    /// </summary>
    public static int? LayerIndex(string moduleName, IReadOnlyList<string>? layersPattern)
    {
        ArgumentNullException.ThrowIfNull(moduleName);
        Match? m = null;
        if (layersPattern is null || layersPattern.Count == 0)
        {
            m = AnyLayerIndex.Match(moduleName);
        }
        else
        {
            foreach (var pattern in layersPattern)
            {
                m = Regex.Match(moduleName, $@"^.*?\.{pattern}\.(\d+)\.", RegexOptions.CultureInvariant);
                if (m.Success) break;
            }
        }
        return m is { Success: true } && int.TryParse(m.Groups[1].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int index) ? index : null;
    }

    /// <summary>
    /// PEFT's rank_pattern / alpha_pattern lookup (<c>get_pattern_key</c>): the first key, in insertion order, that
    /// as a regular expression matches the end of <paramref name="moduleName"/> starting at a "." boundary or at the
    /// beginning (<c>re.match(rf"(.*\.)?({key})$", name)</c>); null when none matches.
    /// </summary>
    public static string? PatternKey(IEnumerable<string> patternKeys, string moduleName)
    {
        ArgumentNullException.ThrowIfNull(patternKeys);
        ArgumentNullException.ThrowIfNull(moduleName);
        foreach (var key in patternKeys)
        {
            Regex regex;
            try
            {
                regex = new Regex($@"^(?:.*\.)?(?:{key})$", RegexOptions.CultureInvariant);
            }
            catch (ArgumentException e)
            {
                throw new PeftConfigException($"pattern key '{key}' is not a valid regular expression: {e.Message}", e);
            }
            if (regex.IsMatch(moduleName)) return key;
        }
        return null;
    }

    /// <summary>Whether <paramref name="moduleName"/> is <paramref name="container"/> or lies inside it (PEFT: <c>(^|.*\.){m}($|\..*)</c>).</summary>
    internal static bool IsInside(string moduleName, string container) =>
        Regex.IsMatch(moduleName, $@"^(?:.*\.)?{container}(?:$|\..*)", RegexOptions.CultureInvariant);
}
