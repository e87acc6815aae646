namespace Microsoft.ML.Peft.Models.Loading;

/// <summary>
/// Matches a model's parameter names to checkpoint keys the way transformers' <c>from_pretrained</c> does: exact names
/// first; a checkpoint saved from the bare backbone (no "bert." / "model." / "transformer." prefix, e.g. the original
/// gpt2 weights) is matched by adding the prefix; TF-era LayerNorm names "gamma"/"beta" read as "weight"/"bias".
/// Checkpoint keys that are known non-parameter buffers are set aside instead of being reported as unexpected.
/// </summary>
internal sealed class CheckpointKeyMap
{
    private static readonly string[] BufferSuffixes =
        [".position_ids", ".inv_freq", ".attn.bias", ".attn.masked_bias", ".attention.bias", ".attention.masked_bias"];

    private CheckpointKeyMap(Dictionary<string, string> byParameter, List<string> unexpected, List<string> buffers, bool addedPrefix)
    {
        ByParameter = byParameter;
        Unexpected = unexpected;
        Buffers = buffers;
        AddedPrefix = addedPrefix;
    }

    /// <summary>Parameter name → checkpoint key, for every parameter found.</summary>
    public IReadOnlyDictionary<string, string> ByParameter { get; }

    /// <summary>Checkpoint keys matching no parameter and no known buffer, sorted.</summary>
    public IReadOnlyList<string> Unexpected { get; }

    /// <summary>Checkpoint keys recognised as buffers (ignored), sorted.</summary>
    public IReadOnlyList<string> Buffers { get; }

    /// <summary>Whether any parameter was found only after removing the backbone prefix (a bare-backbone checkpoint).</summary>
    public bool AddedPrefix { get; }

    public static CheckpointKeyMap Build(IReadOnlyList<string> checkpointKeys, IEnumerable<string> parameterNames, string backbonePrefix)
    {
        // Normalised name → original key; the first spelling wins if a file somehow holds both.
        var byNormalised = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string key in checkpointKeys) byNormalised.TryAdd(Normalise(key), key);

        string prefix = backbonePrefix + ".";
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        bool added = false;
        foreach (string name in parameterNames)
        {
            if (byNormalised.TryGetValue(name, out string? key))
            {
                map[name] = key;
            }
            else if (name.StartsWith(prefix, StringComparison.Ordinal) && byNormalised.TryGetValue(name[prefix.Length..], out key))
            {
                map[name] = key;
                added = true;
            }
        }

        var used = new HashSet<string>(map.Values, StringComparer.Ordinal);
        var unexpected = new List<string>();
        var buffers = new List<string>();
        foreach (string key in checkpointKeys)
        {
            if (used.Contains(key)) continue;
            if (BufferSuffixes.Any(s => key.EndsWith(s, StringComparison.Ordinal))) buffers.Add(key);
            else unexpected.Add(key);
        }
        unexpected.Sort(StringComparer.Ordinal);
        buffers.Sort(StringComparer.Ordinal);
        return new CheckpointKeyMap(map, unexpected, buffers, added);
    }

    private static string Normalise(string key)
    {
        if (key.EndsWith(".gamma", StringComparison.Ordinal)) return key[..^".gamma".Length] + ".weight";
        if (key.EndsWith(".beta", StringComparison.Ordinal)) return key[..^".beta".Length] + ".bias";
        return key;
    }
}
