using System.Text.Json;
using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft;

/// <summary>
/// An <see cref="EnsembleTextClassificationTransformer"/> on disk: the adapters as <see cref="Tuners.PeftModel.SavePretrained"/>
/// writes them (member 0 "default" in the folder, every other member in a sub-folder of its name), the classifier's
/// classifier.json, and ensemble.json (method, members, MC-dropout passes and seed, column names).
/// </summary>
internal static class EnsembleFiles
{
    public const string FileName = "ensemble.json";
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public static void Save(string folder, EnsembleTextClassificationTransformer ensemble)
    {
        Directory.CreateDirectory(folder);
        var backend = (PeftTextClassifier)ensemble.Classifier.Scorer.Backend;
        lock (ensemble.Classifier.Scorer.Gate) backend.Peft.SavePretrained(folder, ensemble.Settings.Members);
        ClassifierManifest.From(ensemble.Classifier).Save(folder);
        var s = ensemble.Settings;
        var manifest = new Manifest
        {
            Method = s.Method.ToString(), Members = [.. s.Members], DropoutPasses = s.DropoutPasses, DropoutSeed = s.DropoutSeed,
            EntropyColumn = s.EntropyColumn, MutualInformationColumn = s.MutualInformationColumn,
        };
        AtomicFile.WriteAllText(Path.Combine(folder, FileName), JsonSerializer.Serialize(manifest, Json));
    }

    /// <summary>Rebuilds the ensemble: the base model and member 0 through the classifier's manifest, then every other member.</summary>
    public static EnsembleTextClassificationTransformer Load(string folder, ITextClassifierFactory factory, string? baseModel, Action<string>? log)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{FileName} is missing in {folder}", path);
        Manifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid ensemble manifest: {e.Message}", e);
        }
        if (manifest.Format != 1) throw new InvalidDataException($"{path}: unsupported format {manifest.Format}");
        if (!Enum.TryParse<EnsembleMethod>(manifest.Method, out var method)) throw new InvalidDataException($"{path}: unknown ensemble method '{manifest.Method}'");
        if (manifest.Members is not ["default", ..] || manifest.Members.Skip(1).Any(m => m.Length == 0 || m.Contains('/', StringComparison.Ordinal) || m.Contains('\\', StringComparison.Ordinal) || m.Contains("..", StringComparison.Ordinal)))
            throw new InvalidDataException($"{path}: the members must start with \"default\" and name plain sub-folders, got [{string.Join(", ", manifest.Members)}]");
        if (method == EnsembleMethod.MonteCarloDropout && manifest.DropoutPasses < 1) throw new InvalidDataException($"{path}: MC dropout needs at least one pass, got {manifest.DropoutPasses}");

        var classifier = ClassifierManifest.Load(folder).Restore(folder, factory, baseModel, log);
        var backend = classifier.Scorer.Backend as PeftTextClassifier ?? throw new InvalidDataException($"{folder}: the ensemble's classifier has no PEFT adapter");
        foreach (var member in manifest.Members.Skip(1)) backend.Peft.LoadAdapter(Path.Combine(folder, member), member);
        backend.Peft.SetAdapter("default");
        var settings = new EnsembleSettings(method, manifest.Members, manifest.DropoutPasses, manifest.DropoutSeed, manifest.EntropyColumn, manifest.MutualInformationColumn);
        return new EnsembleTextClassificationTransformer(classifier, settings);
    }

    /// <summary>Every file of a saved ensemble, relative to its folder with '/' separators.</summary>
    public static IEnumerable<string> Files(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories).Select(f => Path.GetRelativePath(folder, f).Replace('\\', '/')).Order(StringComparer.Ordinal);

    private sealed class Manifest
    {
        public int Format { get; set; } = 1;

        public string Method { get; set; } = "";

        public List<string> Members { get; set; } = [];

        public int DropoutPasses { get; set; }

        public long DropoutSeed { get; set; }

        public string EntropyColumn { get; set; } = "PredictiveEntropy";

        public string MutualInformationColumn { get; set; } = "MutualInformation";
    }
}
