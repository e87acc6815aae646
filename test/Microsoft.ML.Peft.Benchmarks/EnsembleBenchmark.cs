using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.Ensembles;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>ensembles [--train N] [--epochs E] [--seed S] [--lr L] [--n 4] [--methods checkpoint,svgd,deep,mcdropout]
/// [--temperature T]</c>: calibration of the LoRA ensembles of <see cref="SvgdLoraTextClassificationTrainer"/> on
/// SST-2 with stories260K, next to MAP. Same recipe and rows as the <c>laplace</c> command (LoRA r 8 / alpha 16 /
/// dropout 0.05 on q_proj,v_proj, batch 32, 64 tokens; training rows drawn seeded from train.tsv; dev = dev.tsv), so
/// its Laplace rows compare directly. The checkpoint ensemble's member 0 is exactly the LoRA trainer's MAP model (same
/// options and seed), so MAP is scored from it. Each line is printed as soon as its method is done (accuracy, ECE with
/// 15 bins, NLL in nats, Brier, mean mutual information, training and dev-scoring process CPU seconds).
/// </summary>
internal sealed class EnsembleBenchmark : IBenchmark
{
    public string Name => "ensembles";

    public string Description => "SVGD-LoRA, deep / checkpoint ensembles, MC dropout vs MAP on SST-2 (stories260K): accuracy, ECE, NLL, Brier, cost";

    public int Run(string[] args)
    {
        string Get(string name, string fallback) => Array.IndexOf(args, name) is var i and >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        int trainRows = int.Parse(Get("--train", "500"), CultureInfo.InvariantCulture), epochs = int.Parse(Get("--epochs", "10"), CultureInfo.InvariantCulture);
        int seed = int.Parse(Get("--seed", "1"), CultureInfo.InvariantCulture), n = int.Parse(Get("--n", "4"), CultureInfo.InvariantCulture);
        double lr = double.Parse(Get("--lr", "1e-2"), CultureInfo.InvariantCulture), temperature = double.Parse(Get("--temperature", "1"), CultureInfo.InvariantCulture);
        var methods = Get("--methods", "checkpoint,svgd,deep,mcdropout").Split(',', StringSplitOptions.RemoveEmptyEntries);

        var ml = new MLContext(seed);
        string root = SharedFolder.Find();
        var random = new Random(seed);
        var train = TextRow.ReadTsv(Path.Combine(root, "data", "sst2", "train.tsv")).OrderBy(_ => random.Next()).Take(trainRows).ToList();
        var dev = TextRow.ReadTsv(Path.Combine(root, "data", "sst2", "dev.tsv")).ToList();
        var trainView = ml.Data.LoadFromEnumerable(train);
        var devView = ml.Data.LoadFromEnumerable(dev);
        var labels = dev.Select(r => r.Label ? 1 : 0).ToArray();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ensembles train={train.Count} dev={dev.Count} epochs={epochs} lr={lr} n={n} seed={seed} T={temperature}"));
        Console.WriteLine("| method | accuracy | ECE (15 bins) | NLL | Brier | mean MI | train CPU s | dev CPU s |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");

        foreach (string name in methods)
        {
            var method = name switch
            {
                "svgd" => EnsembleMethod.Svgd,
                "deep" => EnsembleMethod.DeepEnsemble,
                "checkpoint" => EnsembleMethod.CheckpointEnsemble,
                "mcdropout" => EnsembleMethod.MonteCarloDropout,
                _ => throw new ArgumentException($"unknown method '{name}' (svgd, deep, checkpoint, mcdropout)"),
            };
            var options = new SvgdLoraTextClassificationTrainer.Options
            {
                Method = method, ParticleCount = n, Temperature = temperature, BaseModel = Path.Combine(root, "models", "stories260K"), MaxEpochs = epochs,
                BatchSize = 32, LearningRate = lr, MaxSequenceLength = 64, Seed = seed, LoraRank = 8, LoraAlpha = 16, LoraDropout = 0.05,
                TargetModules = ["q_proj", "v_proj"], ScoringBatchSize = 32,
            };
            var cpu = Cpu();
            var ensemble = ml.BinaryClassification.Trainers.SvgdLoraTextClassification(options).Fit(trainView);
            double trainCpu = Cpu() - cpu;
            if (method == EnsembleMethod.CheckpointEnsemble)
            {
                cpu = Cpu();
                var map = ml.Data.CreateEnumerable<MapRow>(ensemble.Classifier.Transform(devView), false).Select(r => (double)r.Probability).ToArray();
                Report("MAP (LoRA trainer)", map, 0, labels, trainCpu, Cpu() - cpu);
            }
            cpu = Cpu();
            var rows = ml.Data.CreateEnumerable<Row>(ensemble.Transform(devView), false).ToList();
            Report(string.Create(CultureInfo.InvariantCulture, $"{method} (n = {ensemble.MemberCount})"), rows.Select(r => (double)r.Probability).ToArray(),
                rows.Average(r => (double)r.MutualInformation), labels, trainCpu, Cpu() - cpu);
        }
        return 0;
    }

    private static double Cpu() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    private static void Report(string method, double[] positive, double meanMutualInformation, int[] labels, double trainCpu, double devCpu)
    {
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"| {method} | {BinaryCalibrationCells.Format(positive, labels)} | {meanMutualInformation:G3} | {trainCpu:F1} | {devCpu:F1} |"));
    }

    internal sealed class MapRow
    {
        public float Probability { get; set; }
    }

    internal sealed class Row
    {
        public float Probability { get; set; }

        public float MutualInformation { get; set; }
    }
}
