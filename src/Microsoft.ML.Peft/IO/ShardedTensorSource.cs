using System.Diagnostics.CodeAnalysis;
using System.Text.Json;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// A checkpoint split into shards and described by an index file (<c>model.safetensors.index.json</c> or
/// <c>pytorch_model.bin.index.json</c>): <c>{"metadata": {...}, "weight_map": {"tensor name": "shard file"}}</c>.
/// Behaves as one <see cref="ITensorSource"/>. On open every shard is opened (headers validated, data mapped, not read)
/// and every tensor named in the weight map is checked to exist in the shard the map points to.
/// </summary>
public sealed class ShardedTensorSource : ITensorSource
{
    private readonly Dictionary<string, TensorView> _byName;
    private readonly List<ITensorSource> _shards;

    private ShardedTensorSource(string path, List<ITensorSource> shards, Dictionary<string, TensorView> byName,
        List<string> names, Dictionary<string, string> metadata)
    {
        Path = path;
        _shards = shards;
        _byName = byName;
        Names = names;
        Metadata = metadata;
    }

    /// <summary>
    /// Opens an index file; shard files are resolved in the index's folder and must be plain file names.
    /// Throws <see cref="CheckpointFormatException"/> naming the index, shard or tensor at fault.
    /// </summary>
    public static ShardedTensorSource Open(string indexPath)
    {
        ArgumentNullException.ThrowIfNull(indexPath);
        string full = System.IO.Path.GetFullPath(indexPath);
        string folder = System.IO.Path.GetDirectoryName(full)!;
        var (weightMap, metadata) = ReadIndex(full);

        var shards = new List<ITensorSource>();
        var shardByFile = new Dictionary<string, ITensorSource>(StringComparer.Ordinal);
        var byName = new Dictionary<string, TensorView>(StringComparer.Ordinal);
        var names = new List<string>(weightMap.Count);
        try
        {
            foreach (var (tensor, shardFile) in weightMap)
            {
                if (!shardByFile.TryGetValue(shardFile, out var shard))
                {
                    string shardPath = System.IO.Path.Combine(folder, shardFile);
                    if (!File.Exists(shardPath))
                        throw Error(full, tensor, $"shard '{shardFile}' listed in the weight map does not exist in {folder}");
                    shard = Checkpoint.OpenFile(shardPath);
                    shards.Add(shard);
                    shardByFile.Add(shardFile, shard);
                }
                if (!shard.TryGetTensor(tensor, out var view))
                    throw Error(full, tensor, $"the weight map places it in '{shardFile}', which has no such tensor");
                byName.Add(tensor, view);
                names.Add(tensor);
            }
        }
        catch
        {
            foreach (var s in shards) s.Dispose();
            throw;
        }
        return new ShardedTensorSource(full, shards, byName, names, metadata);
    }

    /// <inheritdoc />
    public string Path { get; }

    /// <inheritdoc />
    public IReadOnlyList<string> Names { get; }

    /// <summary>The index's <c>metadata</c> object, values as strings (numbers in their JSON spelling).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>The opened shards, in the order the weight map first mentions them.</summary>
    public IReadOnlyList<ITensorSource> Shards => _shards;

    /// <inheritdoc />
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <inheritdoc />
    public TensorView GetTensor(string name) =>
        _byName.TryGetValue(name, out var view)
            ? view
            : throw new KeyNotFoundException($"{Path}: no tensor named '{name}' in the weight map");

    /// <inheritdoc />
    public bool TryGetTensor(string name, [NotNullWhen(true)] out TensorView? tensor) => _byName.TryGetValue(name, out tensor);

    /// <summary>Closes every shard.</summary>
    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
    }

    private static (List<KeyValuePair<string, string>> WeightMap, Dictionary<string, string> Metadata) ReadIndex(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"index file not found: {path}", path);
        if (info.Length > 100_000_000) throw Error(path, null, $"index is {info.Length} bytes; refusing more than 100 MB");
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path));
        }
        catch (JsonException e)
        {
            throw Error(path, null, $"not valid JSON: {e.Message}", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw Error(path, null, "expected a JSON object with an object member 'weight_map'");

            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            if (root.TryGetProperty("metadata", out var meta) && meta.ValueKind == JsonValueKind.Object)
            {
                foreach (var m in meta.EnumerateObject())
                    metadata[m.Name] = m.Value.ValueKind == JsonValueKind.String ? m.Value.GetString()! : m.Value.GetRawText();
            }

            var weightMap = new List<KeyValuePair<string, string>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw Error(path, entry.Name, $"weight_map value must be a shard file name, found {entry.Value.ValueKind}");
                string shard = entry.Value.GetString()!;
                if (!IsPlainFileName(shard))
                    throw Error(path, entry.Name, $"shard name '{shard}' must be a plain file name in the index's folder");
                if (!seen.Add(entry.Name)) throw Error(path, entry.Name, "appears twice in weight_map");
                weightMap.Add(new(entry.Name, shard));
            }
            return (weightMap, metadata);
        }
    }

    private static bool IsPlainFileName(string name) =>
        name.Length > 0 && name != "." && name != ".." && name.IndexOfAny(['/', '\\', ':', '\0']) < 0;

    private static CheckpointFormatException Error(string path, string? tensor, string detail, Exception? inner = null) =>
        new(path, tensor, SafeTensorsFormatException.Compose(path, tensor, detail), inner);
}
