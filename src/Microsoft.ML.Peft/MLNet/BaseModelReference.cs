using System.Security.Cryptography;

namespace Microsoft.ML.Peft;

/// <summary>
/// Identifies the base model an adapter was trained on: the folder or hub id it was loaded from and the SHA-256 of each
/// weights file, so that loading a saved model onto different base weights fails clearly instead of predicting garbage.
/// </summary>
internal sealed class BaseModelReference
{
    public string NameOrPath { get; set; } = "";

    /// <summary>Weights file name → lower-case hex SHA-256.</summary>
    public SortedDictionary<string, string> WeightsSha256 { get; set; } = new(StringComparer.Ordinal);

    /// <summary>How the base's linear layers were quantized before the adapter was attached (QLoRA), or null (float weights).</summary>
    public QLoraBaseQuantization? Quantization { get; set; }

    /// <summary>Describes the model in <paramref name="folder"/> (the resolved local copy of <paramref name="nameOrPath"/>).</summary>
    public static BaseModelReference Describe(string nameOrPath, string folder)
    {
        var reference = new BaseModelReference { NameOrPath = nameOrPath };
        foreach (var file in WeightFiles(folder)) reference.WeightsSha256[Path.GetFileName(file)] = Sha256(file);
        if (reference.WeightsSha256.Count == 0) throw new FileNotFoundException($"no weights files (*.safetensors, *.bin) in the base model folder {folder}", folder);
        return reference;
    }

    /// <summary>Throws unless <paramref name="folder"/> holds exactly the weights this reference names.</summary>
    public void Verify(string folder)
    {
        var actual = Describe(NameOrPath, folder).WeightsSha256;
        foreach (var (file, sha) in WeightsSha256)
        {
            if (!actual.TryGetValue(file, out var found))
                throw new InvalidDataException($"the base model folder {folder} lacks the weights file '{file}' the adapter was trained with (base model '{NameOrPath}')");
            if (!string.Equals(found, sha, StringComparison.Ordinal))
                throw new InvalidDataException($"the weights file {Path.Combine(folder, file)} differs from the one the adapter was trained with (SHA-256 {found}, expected {sha}; base model '{NameOrPath}')");
        }
    }

    private static IEnumerable<string> WeightFiles(string folder) =>
        Directory.EnumerateFiles(folder)
            .Where(f =>
            {
                string name = Path.GetFileName(f);
                return !name.StartsWith("adapter_", StringComparison.Ordinal) &&
                       (name.EndsWith(".safetensors", StringComparison.Ordinal) || (name.StartsWith("pytorch_model", StringComparison.Ordinal) && name.EndsWith(".bin", StringComparison.Ordinal)));
            })
            .OrderBy(f => f, StringComparer.Ordinal);

    private static string Sha256(string file)
    {
        using var stream = File.OpenRead(file);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }
}
