using System.Diagnostics;
using System.Globalization;
using System.Text;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Calibration;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>laplace [--data sst2|mr|subj] [--train N] [--epochs E] [--validation V] [--dev D] [--seed S] [--lr L]
/// [--curvature kfac|diagonal|lastlayer] [--fisher sampled|empirical|exact] [--tuning evidence|validation|fixed]
/// [--lambda X] [--layerwise] [--temperature T] [--predictive probit|mc] [--also layerwise,validation,empirical,exact,exact-validation,diagonal,lastlayer,mc]</c>: quality and cost of Laplace-LoRA on a
/// binary text task. stories260K + LoRA (r 8, alpha 16, q_proj/v_proj, head as modules_to_save) is trained on N rows
/// for E epochs; on the dev set it prints accuracy, ECE (15 equal-width bins), NLL (nats) and Brier score of the MAP
/// model, of temperature scaling (T fitted on V held-out rows, disjoint from training) and of the LaplaceCalibrator;
/// then the cost lines: calibrator fit time vs one training epoch, Laplace predict time vs a plain forward over dev.
/// SST-2: training rows drawn (seeded) from train.tsv, dev = dev.tsv (872 rows). MR / SUBJ: the two files are shuffled
/// (seeded) and split into dev (first D), validation and training rows.
/// </summary>
internal sealed class LaplaceBenchmark : IBenchmark
{
    public string Name => "laplace";

    public string Description => "Laplace-LoRA vs MAP vs temperature scaling on SST-2/MR/SUBJ (stories260K): accuracy, ECE, NLL, Brier, fit/predict cost";

    public int Run(string[] args)
    {
        var a = new Args(args);
        string data = a.Get("--data", "sst2");
        int trainRows = a.Int("--train", 500), epochs = a.Int("--epochs", 4), validationRows = a.Int("--validation", 500), devRows = a.Int("--dev", 1000), seed = a.Int("--seed", 1);
        var ml = new MLContext(seed);
        LaplaceCalibratorPredictor.SortByLength = a.Has("--length-sorted");
        var (train, validation, dev) = Load(data, trainRows, validationRows, devRows, seed);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"laplace data={data} train={train.Count} validation={validation.Count} dev={dev.Count} epochs={epochs} seed={seed}"));

        var loraOptions = new LoraTextClassificationTrainer.Options
        {
            BaseModel = Path.Combine(SharedFolder.Find(), "models", "stories260K"), MaxEpochs = epochs, BatchSize = 32, LearningRate = a.Double("--lr", 2e-3),
            MaxSequenceLength = 64, Seed = seed, LoraRank = 8, LoraAlpha = 16, LoraDropout = 0.05, TargetModules = ["q_proj", "v_proj"], ScoringBatchSize = 32,
        };
        var trainView = ml.Data.LoadFromEnumerable(train);
        var clock = new CostClock();
        var lora = ml.BinaryClassification.Trainers.LoraTextClassification(loraOptions).Fit(trainView);
        var (trainSeconds, trainCpu) = clock.Lap();
        var mapDev = Margins(ml, lora.Transform(ml.Data.LoadFromEnumerable(dev)));
        var (forwardSeconds, forwardCpu) = clock.Lap();
        var mapValidation = Margins(ml, lora.Transform(ml.Data.LoadFromEnumerable(validation)));
        var devLabels = dev.Select(r => r.Label ? 1 : 0).ToArray();
        var validationLabels = validation.Select(r => r.Label ? 1 : 0).ToArray();

        double temperature = TemperatureScaling.Fit(TwoClassLogits(mapValidation), 2, validationLabels);

        var calibratorOptions = new LaplaceCalibrator.Options
        {
            Curvature = a.Get("--curvature", "kfac") switch { "diagonal" => CurvatureKind.Diagonal, "lastlayer" => CurvatureKind.LastLayer, _ => CurvatureKind.Kfac },
            Fisher = a.Get("--fisher", "sampled") switch { "empirical" => FisherKind.Empirical, "exact" => FisherKind.Exact, _ => FisherKind.Sampled },
            PriorPrecisionTuning = a.Get("--tuning", "evidence") switch { "validation" => LaplacePriorPrecisionTuning.Validation, "fixed" => LaplacePriorPrecisionTuning.Fixed, _ => LaplacePriorPrecisionTuning.Evidence },
            PriorPrecision = a.Double("--lambda", 1), PriorPrecisionStructure = a.Has("--layerwise") ? PriorPrecisionStructure.Layerwise : PriorPrecisionStructure.Scalar,
            Temperature = a.Double("--temperature", 1), Predictive = a.Get("--predictive", "probit") == "mc" ? LaplacePredictiveKind.MonteCarlo : LaplacePredictiveKind.Probit,
            ValidationSet = ml.Data.LoadFromEnumerable(validation), BatchSize = 32, Seed = seed,
        };
        clock.Lap();
        LaplacePhaseTimer.Clock = ThreadCpuClock.IsAvailable ? ThreadCpuClock.Now : null;
        LaplacePhaseTimer.Reset();
        var laplace = new LaplaceCalibrator(lora, calibratorOptions).Fit(lora.Transform(trainView));
        var (fitSeconds, fitCpu) = clock.Lap();
        string fitPhases = Phases();
        LaplacePhaseTimer.Reset();
        var laplaceDev = ml.Data.CreateEnumerable<Prediction>(laplace.Transform(ml.Data.LoadFromEnumerable(dev)), false).ToList();
        var (predictSeconds, predictCpu) = clock.Lap();
        string predictPhases = Phases();
        LaplacePhaseTimer.Clock = null;
        // A second plain forward over dev right after the predict, so the two compared passes share the machine's load.
        Margins(ml, lora.Transform(ml.Data.LoadFromEnumerable(dev)));
        var (forwardSeconds2, forwardCpu2) = clock.Lap();
        // And one more training epoch (same recipe, a fresh adapter) right after the fit, for an epoch measured under the
        // same load as the fit: on a shared machine the load changes within minutes.
        loraOptions.MaxEpochs = 1;
        ml.BinaryClassification.Trainers.LoraTextClassification(loraOptions).Fit(trainView);
        clock.Lap();

        Console.WriteLine("| method | accuracy | ECE (15 bins) | NLL | Brier |");
        Console.WriteLine("| --- | ---: | ---: | ---: | ---: |");
        Report("MAP", mapDev.Select(Sigmoid).ToArray(), devLabels);
        Report(string.Create(CultureInfo.InvariantCulture, $"temperature scaling (T = {temperature:F3})"), mapDev.Select(m => Sigmoid(m / temperature)).ToArray(), devLabels);
        Report(string.Create(CultureInfo.InvariantCulture,
            $"Laplace ({laplace.Curvature}, {laplace.Fisher}, {calibratorOptions.PriorPrecisionTuning}, λ = {laplace.PriorPrecision:G3}{(laplace.PriorPrecisions.Distinct().Count() > 1 ? " layer-wise" : "")}, {laplace.Predictive})"),
            laplaceDev.Select(r => (double)r.Probability).ToArray(), devLabels);
        // Extra variants on the same trained classifier (quality rows only): --also layerwise,validation,empirical,diagonal,lastlayer
        foreach (string variant in a.Get("--also", "").Split(',', StringSplitOptions.RemoveEmptyEntries))
        {
            var o = Variant(calibratorOptions, variant);
            var fitted = new LaplaceCalibrator(lora, o).Fit(lora.Transform(trainView));
            var p = ml.Data.CreateEnumerable<Prediction>(fitted.Transform(ml.Data.LoadFromEnumerable(dev)), false).Select(r => (double)r.Probability).ToArray();
            Report(string.Create(CultureInfo.InvariantCulture,
                $"Laplace ({fitted.Curvature}, {fitted.Fisher}, {o.PriorPrecisionTuning}, λ = {fitted.PriorPrecision:G3}{(fitted.PriorPrecisions.Distinct().Count() > 1 ? $" layer-wise, range {fitted.PriorPrecisions.Min():G3}–{fitted.PriorPrecisions.Max():G3}" : "")}, {fitted.Predictive})"),
                p, devLabels);
        }
        double epochSeconds = trainSeconds / epochs, epochCpu = trainCpu / epochs;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cost (wall / process CPU): training {trainSeconds:F1} / {trainCpu:F1} s ({epochSeconds:F1} / {epochCpu:F1} s per epoch); " +
            $"Laplace fit {fitSeconds:F1} / {fitCpu:F1} s = {fitSeconds / epochSeconds:F2} / {fitCpu / epochCpu:F2} epochs; " +
            $"dev forward {forwardSeconds:F2} / {forwardCpu:F2} s (again after the predict: {forwardSeconds2:F2} / {forwardCpu2:F2} s), " +
            $"Laplace predict {predictSeconds:F2} / {predictCpu:F2} s = {predictSeconds / forwardSeconds:F2}x / {predictCpu / forwardCpu:F2}x " +
            $"(vs the forward after: {predictSeconds / forwardSeconds2:F2}x / {predictCpu / forwardCpu2:F2}x)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"threads: {Environment.ProcessorCount} (set DOTNET_PROCESSOR_COUNT=1 for single-threaded kernels, so the main thread's CPU clock sees all the work)"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"thread CPU: training {clock.ThreadTotals[0]:F2} s ({clock.ThreadTotals[0] / epochs:F2} s per epoch), Laplace fit {clock.ThreadTotals[3]:F2} s = {clock.ThreadTotals[3] / (clock.ThreadTotals[0] / epochs):F2} epochs; " +
            $"dev forward {clock.ThreadTotals[1]:F2} / {clock.ThreadTotals[5]:F2} s (before / after), Laplace predict {clock.ThreadTotals[4]:F2} s = {clock.ThreadTotals[4] / clock.ThreadTotals[1]:F2}x / {clock.ThreadTotals[4] / clock.ThreadTotals[5]:F2}x"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"thread CPU, adjacent: one training epoch after the predict {clock.ThreadTotals[6]:F2} s; Laplace fit / that epoch = {clock.ThreadTotals[3] / clock.ThreadTotals[6]:F2}"));
        Console.WriteLine($"fit phases (thread CPU s): {fitPhases}");
        Console.WriteLine($"predict phases (thread CPU s): {predictPhases}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"posterior: " +
            $"log evidence {laplace.LogMarginalLikelihood:F2}, {laplace.ParameterCount} parameters in {laplace.BlockNames.Count} blocks; mean dev logit variance {laplaceDev.Average(r => r.LogitVariance):G3}"));
        return 0;
    }

    private static string Phases() => string.Join(", ", Enum.GetValues<LaplacePhase>()
        .Select(p => string.Create(CultureInfo.InvariantCulture, $"{p} {LaplacePhaseTimer.Seconds(p):F3}")));

    private static LaplaceCalibrator.Options Variant(LaplaceCalibrator.Options o, string variant) => new()
    {
        Curvature = variant switch { "diagonal" => CurvatureKind.Diagonal, "lastlayer" => CurvatureKind.LastLayer, _ => o.Curvature },
        Fisher = variant switch { "empirical" => FisherKind.Empirical, "exact" or "exact-validation" => FisherKind.Exact, _ => o.Fisher },
        PriorPrecisionTuning = variant is "validation" or "exact-validation" ? LaplacePriorPrecisionTuning.Validation : o.PriorPrecisionTuning,
        PriorPrecisionStructure = variant == "layerwise" ? PriorPrecisionStructure.Layerwise : o.PriorPrecisionStructure,
        PriorPrecision = o.PriorPrecision, Temperature = o.Temperature, Predictive = variant == "mc" ? LaplacePredictiveKind.MonteCarlo : o.Predictive,
        ValidationSet = o.ValidationSet, BatchSize = o.BatchSize, Seed = o.Seed,
    };

    private static void Report(string method, double[] positive, int[] labels) =>
        Console.WriteLine($"| {method} | {BinaryCalibrationCells.Format(positive, labels)} |");

    private static double Sigmoid(double z) => 1 / (1 + Math.Exp(-z));

    private static double[] TwoClassLogits(double[] margins)
    {
        var logits = new double[margins.Length * 2];
        for (int i = 0; i < margins.Length; i++) logits[2 * i + 1] = margins[i];
        return logits;
    }

    private static double[] Margins(MLContext ml, IDataView scored) =>
        ml.Data.CreateEnumerable<MapPrediction>(scored, false).Select(r => (double)r.Score).ToArray();

    private static (List<TextRow> Train, List<TextRow> Validation, List<TextRow> Dev) Load(string data, int trainRows, int validationRows, int devRows, int seed)
    {
        string root = Path.Combine(SharedFolder.Find(), "data");
        var random = new Random(seed);
        if (data == "sst2")
        {
            var all = TextRow.ReadTsv(Path.Combine(root, "sst2", "train.tsv")).OrderBy(_ => random.Next()).ToList();
            return (all.Take(trainRows).ToList(), all.Skip(trainRows).Take(validationRows).ToList(), TextRow.ReadTsv(Path.Combine(root, "sst2", "dev.tsv")).ToList());
        }
        var (positive, negative) = data switch
        {
            "mr" => ("mr/rt-polarity.pos", "mr/rt-polarity.neg"),
            "subj" => ("subj/subj.subjective", "subj/subj.objective"),
            _ => throw new ArgumentException($"unknown data set '{data}' (sst2, mr, subj)"),
        };
        var latin1 = Encoding.Latin1;
        var rows = File.ReadLines(Path.Combine(root, positive), latin1).Select(t => new TextRow { Sentence1 = t.Trim(), Label = true })
            .Concat(File.ReadLines(Path.Combine(root, negative), latin1).Select(t => new TextRow { Sentence1 = t.Trim(), Label = false }))
            .Where(r => r.Sentence1.Length > 0).OrderBy(_ => random.Next()).ToList();
        return (rows.Skip(devRows + validationRows).Take(trainRows).ToList(), rows.Skip(devRows).Take(validationRows).ToList(), rows.Take(devRows).ToList());
    }

    internal sealed class MapPrediction
    {
        public float Score { get; set; }
    }

    internal sealed class Prediction
    {
        public float Score { get; set; }

        public float Probability { get; set; }

        public float LogitVariance { get; set; }
    }

    /// <summary>Wall clock and process CPU time (all threads; less sensitive to other processes on a shared machine).</summary>
    private sealed class CostClock
    {
        private readonly Stopwatch wall = Stopwatch.StartNew();
        private TimeSpan cpu = Process.GetCurrentProcess().TotalProcessorTime;
        private double thread = ThreadCpuClock.IsAvailable ? ThreadCpuClock.Now() : 0;

        /// <summary>The calling thread's CPU seconds of each lap, in lap order.</summary>
        public List<double> ThreadTotals { get; } = [];

        public (double Wall, double Cpu) Lap()
        {
            var nowCpu = Process.GetCurrentProcess().TotalProcessorTime;
            var result = (wall.Elapsed.TotalSeconds, (nowCpu - cpu).TotalSeconds);
            double nowThread = ThreadCpuClock.IsAvailable ? ThreadCpuClock.Now() : 0;
            ThreadTotals.Add(nowThread - thread);
            thread = nowThread;
            wall.Restart();
            cpu = nowCpu;
            return result;
        }
    }

    private sealed class Args(string[] args)
    {
        public bool Has(string name) => args.Contains(name);

        public string Get(string name, string fallback)
        {
            int i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }

        public int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

        public double Double(string name, double fallback) => double.Parse(Get(name, fallback.ToString("R", CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
    }
}
