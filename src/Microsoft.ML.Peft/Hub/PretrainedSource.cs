using System.Text.Json;
using System.Text.RegularExpressions;

namespace Microsoft.ML.Peft.Hub;

/// <summary>
/// Turns a model reference into a local folder, like <c>from_pretrained</c>: an existing folder is used as it is
/// (no network); a hub id "owner/name" is downloaded into the cache (config, tokenizer files, safetensors weights or
/// index + shards, falling back to pytorch_model.bin) and the snapshot folder is returned.
/// </summary>
public static partial class PretrainedSource
{
    /// <summary>Files fetched when the repository has them (tokenizers, generation settings, PEFT adapters).</summary>
    public static IReadOnlyList<string> OptionalFiles { get; } =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json", "vocab.txt", "vocab.json",
        "merges.txt", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "generation_config.json",
        "adapter_config.json", "adapter_model.safetensors",
    ];

    /// <summary>Synchronous <see cref="ResolveAsync"/>.</summary>
    public static string Resolve(string nameOrPath, PretrainedSourceOptions? options = null, CancellationToken cancellationToken = default) =>
        ResolveAsync(nameOrPath, options, cancellationToken).GetAwaiter().GetResult();

    /// <summary>
    /// Returns a local folder holding the model. <paramref name="nameOrPath"/> is an existing folder (returned as a
    /// full path) or a hub repository id "owner/name" (or "name"). Throws <see cref="DirectoryNotFoundException"/> for
    /// a path that does not exist, <see cref="HubException"/> when the hub or the cache cannot provide the files.
    /// </summary>
    public static async Task<string> ResolveAsync(string nameOrPath, PretrainedSourceOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(nameOrPath);
        if (Directory.Exists(nameOrPath)) return Path.GetFullPath(nameOrPath);
        if (LooksLikePath(nameOrPath) || !RepoId().IsMatch(nameOrPath) || nameOrPath.Contains("--", StringComparison.Ordinal))
            throw new DirectoryNotFoundException($"'{nameOrPath}' is neither an existing folder nor a hub repository id (owner/name)");

        options ??= new PretrainedSourceOptions();
        var cache = new HubCache(options.CacheDirectory, nameOrPath);
        return options.Offline
            ? ResolveOffline(nameOrPath, options, cache)
            : await ResolveOnlineAsync(nameOrPath, options, cache, cancellationToken).ConfigureAwait(false);
    }

    private static string ResolveOffline(string repoId, PretrainedSourceOptions options, HubCache cache)
    {
        string where = $"offline mode (HF_HUB_OFFLINE): '{repoId}' at revision '{options.Revision}'";
        string commit = cache.ReadRef(options.Revision)
            ?? throw new HubException($"{where} is not in the cache {cache.RepoFolder}; run once online or pass a local folder");
        var missing = MissingFromSnapshot(cache, commit);
        if (missing.Count > 0)
            throw new HubException($"{where}: the cached snapshot {cache.SnapshotFolder(commit)} lacks {string.Join(", ", missing)}");
        return cache.SnapshotFolder(commit);
    }

    /// <summary>What a usable snapshot must hold: config.json and complete weights in one of the supported layouts.</summary>
    private static List<string> MissingFromSnapshot(HubCache cache, string commit)
    {
        var missing = new List<string>();
        if (!cache.HasSnapshotFile(commit, "config.json")) missing.Add("config.json");
        bool weights = cache.HasSnapshotFile(commit, "model.safetensors") || cache.HasSnapshotFile(commit, "pytorch_model.bin")
            || ShardsPresent(cache, commit, "model.safetensors.index.json") || ShardsPresent(cache, commit, "pytorch_model.bin.index.json");
        if (!weights) missing.Add("weights (model.safetensors, a sharded index with all shards, or pytorch_model.bin)");
        return missing;
    }

    private static bool ShardsPresent(HubCache cache, string commit, string index)
    {
        if (!cache.HasSnapshotFile(commit, index)) return false;
        try
        {
            return ShardNames(File.ReadAllText(Path.Combine(cache.SnapshotFolder(commit), index))).All(s => cache.HasSnapshotFile(commit, s));
        }
        catch (Exception e) when (e is JsonException or HubException)
        {
            return false;
        }
    }

    private static async Task<string> ResolveOnlineAsync(string repoId, PretrainedSourceOptions options, HubCache cache, CancellationToken ct)
    {
        using var downloader = new HubDownloader(options);
        string commit;
        HashSet<string> files;
        using (var info = await downloader.GetJsonAsync($"api/models/{repoId}/revision/{Uri.EscapeDataString(options.Revision)}", repoId, ct).ConfigureAwait(false))
        {
            commit = info.RootElement.TryGetProperty("sha", out var sha) && sha.GetString() is { } s && HubCache.IsCommitHash(s)
                ? s
                : throw new HubException($"{repoId}: the hub's model info has no commit 'sha'");
            files = info.RootElement.TryGetProperty("siblings", out var siblings) && siblings.ValueKind == JsonValueKind.Array
                ? siblings.EnumerateArray().Select(f => f.GetProperty("rfilename").GetString()!).ToHashSet(StringComparer.Ordinal)
                : throw new HubException($"{repoId}: the hub's model info lists no files ('siblings')");
        }

        async Task Fetch(string file)
        {
            if (cache.HasSnapshotFile(commit, file)) return;
            string blob = await downloader.DownloadAsync(cache, repoId, commit, file, ct).ConfigureAwait(false);
            cache.LinkIntoSnapshot(commit, file, blob);
        }

        if (!files.Contains("config.json")) throw new HubException($"{repoId}@{commit}: the repository has no config.json");
        await Fetch("config.json").ConfigureAwait(false);
        foreach (string optional in OptionalFiles.Where(files.Contains)) await Fetch(optional).ConfigureAwait(false);

        string? weights = new[] { "model.safetensors", "model.safetensors.index.json" }
            .Concat(options.AllowPyTorchWeights ? ["pytorch_model.bin", "pytorch_model.bin.index.json"] : [])
            .FirstOrDefault(files.Contains)
            ?? throw new HubException($"{repoId}@{commit}: no model.safetensors, model.safetensors.index.json" +
                (options.AllowPyTorchWeights ? ", pytorch_model.bin or pytorch_model.bin.index.json" : " (PyTorch weights not allowed)"));
        await Fetch(weights).ConfigureAwait(false);
        if (weights.EndsWith(".index.json", StringComparison.Ordinal))
        {
            foreach (string shard in ShardNames(File.ReadAllText(Path.Combine(cache.SnapshotFolder(commit), weights))))
            {
                if (!files.Contains(shard)) throw new HubException($"{repoId}@{commit}: {weights} names shard '{shard}', which the repository does not have");
                await Fetch(shard).ConfigureAwait(false);
            }
        }
        cache.WriteRef(options.Revision, commit);
        return cache.SnapshotFolder(commit);
    }

    /// <summary>Distinct shard file names of an index's weight_map; each must be a plain file name.</summary>
    private static IEnumerable<string> ShardNames(string indexJson)
    {
        using var doc = JsonDocument.Parse(indexJson);
        if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new HubException("index has no weight_map");
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            string shard = entry.Value.GetString() ?? "";
            if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard is "." or "..")
                throw new HubException($"index names shard '{shard}', which is not a plain file name");
            shards.Add(shard);
        }
        return shards;
    }

    private static bool LooksLikePath(string s) =>
        Path.IsPathRooted(s) || s.StartsWith('.') || s.StartsWith('~') || s.Contains('\\') || s.Count(c => c == '/') > 1;

    [GeneratedRegex(@"^(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")]
    private static partial Regex RepoId();
}
