using System.Runtime.InteropServices;
using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.IO;

namespace Microsoft.ML.Peft;

/// <summary>
/// A <see cref="LaplaceCalibratorTransformer"/>'s posterior on disk, next to its classifier's adapter:
/// <c>laplace_calibrator.json</c> (settings, data count, MAP log-likelihood, block names and prior precisions) and
/// <c>laplace_posterior.safetensors</c> (per block, the K-FAC factors' eigenvalues and eigenvectors, or the diagonal
/// Fisher, as F64). The MAP weights are not repeated: they are the adapter's. Loading rebuilds the blocks from the same
/// numbers, so probabilities are bit-identical.
/// </summary>
internal static class LaplaceCalibratorPosteriorFiles
{
    public const string ManifestFile = "laplace_calibrator.json";
    public const string TensorsFile = "laplace_posterior.safetensors";
    public static readonly string[] Files = [ManifestFile, TensorsFile];
    private static readonly JsonSerializerOptions Json = new() { WriteIndented = true, Converters = { new JsonStringEnumConverter() } };

    public static void Save(string folder, LaplaceCalibratorTransformer transformer)
    {
        Directory.CreateDirectory(folder);
        var state = transformer.Posterior.ExportState();
        var writer = new SafeTensorsWriter(new Dictionary<string, string> { ["format"] = "laplace-lora" });
        foreach (var b in state.Blocks)
        {
            if (b.Diagonal is { } diagonal) Add(writer, b.Name + ".diagonal", diagonal, diagonal.Length);
            else
            {
                AddFactor(writer, b.Name + ".output_factor", b.OutputFactor!);
                AddFactor(writer, b.Name + ".input_factor", b.InputFactor!);
            }
        }
        var s = transformer.Settings;
        var manifest = new Manifest
        {
            Curvature = state.Options.Curvature, Fisher = state.Options.Fisher, Seed = state.Options.Seed, Temperature = state.Options.Temperature,
            LowRankThreshold = state.Options.LowRankThreshold, LowRankRank = state.Options.LowRankRank, HeadModules = [.. state.Options.HeadModules],
            DataCount = state.DataCount, Classes = state.Classes, TrainLogLikelihood = state.TrainLogLikelihood,
            LogMarginalLikelihood = transformer.LogMarginalLikelihood,
            Predictive = s.Predictive, MonteCarloSamples = s.MonteCarloSamples, PredictiveSeed = s.Seed, BatchSize = s.BatchSize,
            PredictiveEntropyColumn = s.PredictiveEntropyColumn, LogitVarianceColumn = s.LogitVarianceColumn, PriorPrecisionTuning = s.PriorPrecisionTuning,
            Blocks = state.Blocks.Select(b => new BlockEntry { Name = b.Name, PriorPrecision = b.PriorPrecision, Diagonal = b.Diagonal is not null }).ToList(),
        };
        writer.Save(Path.Combine(folder, TensorsFile));
        AtomicFile.WriteAllText(Path.Combine(folder, ManifestFile), JsonSerializer.Serialize(manifest, Json));
    }

    public static LaplaceCalibratorTransformer Load(string folder, LoraTextClassificationTransformer classifier)
    {
        string path = Path.Combine(folder, ManifestFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{ManifestFile} is missing in {folder}", path);
        Manifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(path), Json) ?? throw new InvalidDataException($"{path} is empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path} is not a valid Laplace calibrator manifest: {e.Message}", e);
        }
        if (manifest.Format != 1) throw new InvalidDataException($"{path}: unsupported format {manifest.Format}");
        if (manifest.Classes != classifier.NumberOfClasses)
            throw new InvalidDataException($"{path}: the posterior was fitted for {manifest.Classes} classes, the classifier has {classifier.NumberOfClasses}");
        var blocks = new List<LaplaceBlockState>();
        using (var tensors = SafeTensorsFile.Open(Path.Combine(folder, TensorsFile)))
        {
            foreach (var b in manifest.Blocks)
            {
                blocks.Add(b.Diagonal
                    ? new LaplaceBlockState(b.Name, b.PriorPrecision, Read(tensors, b.Name + ".diagonal"), null, null)
                    : new LaplaceBlockState(b.Name, b.PriorPrecision, null, ReadFactor(tensors, b.Name + ".output_factor"), ReadFactor(tensors, b.Name + ".input_factor")));
            }
        }
        var options = new LaplaceLoraOptions
        {
            Curvature = manifest.Curvature, Fisher = manifest.Fisher, Seed = manifest.Seed, Temperature = manifest.Temperature,
            LowRankThreshold = manifest.LowRankThreshold, LowRankRank = manifest.LowRankRank, HeadModules = manifest.HeadModules,
        };
        var backend = LaplaceCalibrator.PeftBackend(classifier);
        var posterior = LaplaceLora.Restore(backend.Peft, LaplaceCalibrator.LogitsFunction(backend),
            new LaplacePosteriorState(options, manifest.DataCount, manifest.Classes, manifest.TrainLogLikelihood, blocks), path);
        var settings = new LaplaceCalibratorSettings(manifest.Predictive, manifest.MonteCarloSamples, manifest.PredictiveSeed, manifest.BatchSize,
            manifest.PredictiveEntropyColumn, manifest.LogitVarianceColumn, manifest.PriorPrecisionTuning);
        return new LaplaceCalibratorTransformer(classifier, posterior, settings);
    }

    private static void AddFactor(SafeTensorsWriter writer, string name, KroneckerFactorEigenbasis factor)
    {
        Add(writer, name + ".values", factor.Values.ToArray(), factor.Rank);
        Add(writer, name + ".vectors", factor.EigenvectorRows.ToArray(), factor.Rank, factor.Size);
    }

    private static void Add(SafeTensorsWriter writer, string name, double[] values, params ReadOnlySpan<int> shape) =>
        writer.Add(name, CheckpointDType.F64, shape, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    private static double[] Read(SafeTensorsFile file, string name)
    {
        var tensor = file.TryGetTensor(name, out var t) ? t : throw new InvalidDataException($"{file.Path}: tensor '{name}' is missing");
        if (tensor.DType != CheckpointDType.F64) throw new InvalidDataException($"{file.Path}: tensor '{name}' is {tensor.DType}, expected F64");
        return tensor.AsSpan<double>().ToArray();
    }

    private static KroneckerFactorEigenbasis ReadFactor(SafeTensorsFile file, string name)
    {
        var values = Read(file, name + ".values");
        var vectors = file.TryGetTensor(name + ".vectors", out var v) ? v : throw new InvalidDataException($"{file.Path}: tensor '{name}.vectors' is missing");
        if (v.Rank != 2 || v.Shape[0] != values.Length) throw new InvalidDataException($"{file.Path}: '{name}.vectors' has shape [{string.Join(", ", v.Shape)}] for {values.Length} eigenvalues");
        return KroneckerFactorEigenbasis.FromEigenpairs(v.Shape[1], values, Read(file, name + ".vectors"), $"{file.Path}: {name}");
    }

    private sealed class Manifest
    {
        public int Format { get; set; } = 1;
        public CurvatureKind Curvature { get; set; }
        public FisherKind Fisher { get; set; }
        public long Seed { get; set; }
        public double Temperature { get; set; } = 1;
        public int LowRankThreshold { get; set; }
        public int LowRankRank { get; set; }
        public string[] HeadModules { get; set; } = [];
        public int DataCount { get; set; }
        public int Classes { get; set; }
        public double TrainLogLikelihood { get; set; }

        /// <summary>Informational (recomputed from the blocks after loading).</summary>
        public double LogMarginalLikelihood { get; set; }
        public LaplacePredictiveKind Predictive { get; set; }
        public int MonteCarloSamples { get; set; } = 1;
        public int PredictiveSeed { get; set; }
        public int BatchSize { get; set; } = 16;
        public string PredictiveEntropyColumn { get; set; } = "PredictiveEntropy";
        public string LogitVarianceColumn { get; set; } = "LogitVariance";
        public LaplacePriorPrecisionTuning PriorPrecisionTuning { get; set; }
        public List<BlockEntry> Blocks { get; set; } = [];
    }

    private sealed class BlockEntry
    {
        public string Name { get; set; } = "";
        public double PriorPrecision { get; set; }
        public bool Diagonal { get; set; }
    }
}
