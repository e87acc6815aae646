using Microsoft.ML.Peft.IO.Pickle;

namespace Microsoft.ML.Peft.IO;

/// <summary>
/// Entry point for reading weights: opens a model folder or a weights file as one <see cref="ITensorSource"/>,
/// whatever the format (single or sharded safetensors, PyTorch zip checkpoint, or a sharded PyTorch checkpoint).
/// </summary>
public static class Checkpoint
{
    /// <summary>File names tried, in order, when <see cref="Open"/> is given a folder.</summary>
    public static IReadOnlyList<string> WeightFileNames { get; } =
    [
        "model.safetensors", "model.safetensors.index.json",
        "pytorch_model.bin", "pytorch_model.bin.index.json",
        "adapter_model.safetensors", "adapter_model.bin",
    ];

    /// <summary>
    /// Opens <paramref name="fileOrFolder"/>. A folder is searched for <see cref="WeightFileNames"/> (safetensors
    /// preferred); a file is opened by its name (<c>*.index.json</c> → sharded, <c>*.safetensors</c>) or, for other
    /// names, by extension or content (<c>.bin</c>/<c>.pt</c>/<c>.pth</c> or any zip is a PyTorch checkpoint,
    /// anything else is read as safetensors).
    /// </summary>
    public static ITensorSource Open(string fileOrFolder)
    {
        ArgumentNullException.ThrowIfNull(fileOrFolder);
        if (Directory.Exists(fileOrFolder))
        {
            foreach (string name in WeightFileNames)
            {
                string candidate = Path.Combine(fileOrFolder, name);
                if (File.Exists(candidate)) return OpenFile(candidate);
            }
            throw new FileNotFoundException(
                $"{fileOrFolder}: no weights found; looked for {string.Join(", ", WeightFileNames)}", fileOrFolder);
        }
        if (!File.Exists(fileOrFolder)) throw new FileNotFoundException($"checkpoint not found: {fileOrFolder}", fileOrFolder);
        return OpenFile(fileOrFolder);
    }

    internal static ITensorSource OpenFile(string path)
    {
        if (path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase)) return ShardedTensorSource.Open(path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)) return SafeTensorsFile.Open(path);
        string extension = Path.GetExtension(path).ToLowerInvariant();
        bool torch = extension is ".bin" or ".pt" or ".pth" || StartsWithZipMagic(path);
        return torch ? TorchCheckpointFile.Open(path) : SafeTensorsFile.Open(path);
    }

    private static bool StartsWithZipMagic(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 1);
        return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4
            && magic[0] == (byte)'P' && magic[1] == (byte)'K' && magic[2] == 3 && magic[3] == 4;
    }
}
