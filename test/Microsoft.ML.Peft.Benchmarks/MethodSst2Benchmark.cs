using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.ML.Data;
using Microsoft.ML.Peft.Calibration;
using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Benchmarks;

/// <summary>
/// <c>method-sst2 --method NAME [--seed N] [--lr X] [--rows N] [--epochs N] [--data DIR] [--train-file F] [--cache DIR]
/// [--output DIR] [--source-lr X] [--source-rows N] [--lora-dropout X]</c>: one row of docs/METHODS.md. Trains the method on stories260K + SST-2 with the recipe of
/// <c>samples/LoraSentiment --full</c> (batch 32, max length 64, warm-up 6 %, weight decay 0.01, shuffled, clip 1.0;
/// all rows and 2 epochs unless --rows/--epochs), scores dev.tsv, saves the adapter in PEFT format and prints
/// <c>RESULT {json}</c> (method, config, lr, seed, rows, epochs, trainable/total params, dev accuracy and NLL in nats,
/// train_wall_s = optimizer steps only, train_cpu_s = process CPU time in Fit, peak working set, adapter bytes).
/// </summary>
/// <remarks>
/// Every method goes through <c>BinaryClassification.Trainers.PeftTextClassification</c>; QLoRA is that trainer with
/// the 4-bit base factory (what <c>QLoraEstimator</c> wraps, whose options have no progress callback or LoRA+), so its
/// recipe differs from <c>lora</c> in the base weights only. fusion first trains (or reuses from --cache) serial b=8
/// adapters on MR (rt-polarity, 10,662 rows) and SUBJ (10,000 rows), 2 epochs each at --source-lr, same recipe.
/// </remarks>
internal sealed class MethodSst2Benchmark : IBenchmark
{
    /// <summary>Learning rates chosen on dev (results/methods_lr_grid.json) — the default when --lr is not given.</summary>
    private static readonly Dictionary<string, double> ChosenRates = new(StringComparer.Ordinal)
    {
        ["lora"] = 2e-3,
        ["ia3"] = 3e-3,
        ["prompt"] = 3e-3,
        ["bitfit"] = 3e-3,
        ["dora"] = 2e-3,
        ["loraplus"] = 1e-3,
        [MethodSst2Configs.Svgd] = 2e-3, // LoRA's rate: each particle is the lora row's adapter
    };

    /// <summary>Plain UTF-8 in the RESULT line (config summaries hold '+', '≈', '→').</summary>
    private static readonly JsonSerializerOptions JsonOptions = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public string Name => "method-sst2";

    public string Description => "one PEFT method on stories260K + SST-2 (LoraSentiment --full recipe): RESULT {json} for docs/METHODS.md";

    public int Run(string[] args)
    {
        var s = Settings.Parse(args);
        if (s is null) return 2;
        var ml = new MLContext(seed: s.Seed);
        string trainPath = Path.Combine(s.Data, s.TrainFile), devPath = Path.Combine(s.Data, "dev.tsv");
        foreach (var path in new[] { trainPath, devPath })
        {
            if (!File.Exists(path)) throw new FileNotFoundException($"method-sst2: data file not found: {path} (set --data / --train-file)", path);
        }
        var trainAll = ml.Data.LoadFromTextFile<SstRow>(trainPath, hasHeader: true, trimWhitespace: true);
        var train = s.Rows is { } rows ? ml.Data.TakeRows(ml.Data.ShuffleRows(trainAll, seed: s.Seed), rows) : trainAll;
        var dev = ml.Data.LoadFromTextFile<SstRow>(devPath, hasHeader: true, trimWhitespace: true);
        long trainRows = ml.Data.CreateEnumerable<SstRow>(train, reuseRowObject: true).LongCount();
        int totalSteps = (int)((trainRows + 31) / 32) * s.Epochs;

        var fusionSources = s.Method == "fusion" ? EnsureFusionSources(s) : null;
        var recipe = MethodSst2Configs.Build(s.Method, totalSteps, fusionSources);
        if (s.LoraDropout is { } dropout)
        {
            // Checks against PyTorch without random masks (build/reference/methods_forward_check.py).
            if (recipe.Config is not Lora.LoraConfig lora) throw new ArgumentException($"method-sst2: --lora-dropout applies to LoRA-family methods, not {s.Method}");
            lora.Dropout = dropout;
        }
        double lr = s.LearningRate ?? (ChosenRates.TryGetValue(s.Method, out var chosen) ? chosen
            : throw new ArgumentException($"method-sst2: no learning rate chosen yet for '{s.Method}'; pass --lr"));
        Console.WriteLine(FormattableString.Invariant($"method {s.Method}: {recipe.Summary}; lr {lr:G}, seed {s.Seed}, {trainRows:N0} rows, {s.Epochs} epoch(s)"));

        var timer = new OptimizerStepTimer();
        var process = Process.GetCurrentProcess();
        var cpuBefore = process.TotalProcessorTime;
        var watch = Stopwatch.StartNew();
        var fitted = s.Method == MethodSst2Configs.Svgd ? FitSvgd(ml, train, s, lr, dev, timer) : FitPeft(recipe, train, s, lr, dev, timer);
        double fitWall = watch.Elapsed.TotalSeconds;
        process.Refresh();
        double fitCpu = (process.TotalProcessorTime - cpuBefore).TotalSeconds;
        long peakBytes = process.PeakWorkingSet64;

        var scored = fitted.Model.Transform(dev);
        var metrics = ml.BinaryClassification.Evaluate(scored, labelColumnName: nameof(SstRow.Label));
        var predictions = ml.Data.CreateEnumerable<SstPrediction>(scored, reuseRowObject: false).ToList();
        // Mean cross-entropy in nats from the margin s = ln(p₁/p₀) (logit₁ − logit₀ for one model), as the sample:
        // −ln σ(±s) = softplus(∓s).
        double devNll = predictions.Average(r => Softplus(r.Label ? -r.Score : r.Score));
        var positive = predictions.Select(r => (double)r.Probability).ToArray();
        var labels = predictions.Select(r => r.Label ? 1 : 0).ToArray();
        double devEce = CalibrationMetrics.ExpectedCalibrationError(positive.SelectMany(q => new[] { 1 - q, q }).ToArray(), 2, labels);

        string adapterFolder = s.Output ?? Path.Combine(Path.GetTempPath(), $"method-sst2-{s.Method}-s{s.Seed}-{Environment.ProcessId}");
        fitted.Save(adapterFolder);
        long adapterBytes = Directory.EnumerateFiles(adapterFolder, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var (trainable, all) = fitted.Parameters;

        var result = new
        {
            method = s.Method,
            config = recipe.Summary,
            peft_type = fitted.PeftType,
            lr,
            seed = s.Seed,
            rows = trainRows,
            epochs = s.Epochs,
            trainable_params = trainable,
            total_params = all,
            trainable_pct = Math.Round(100.0 * trainable / all, 4),
            dev_accuracy = Math.Round(metrics.Accuracy, 5),
            dev_nll = Math.Round(devNll, 5),
            dev_ece = Math.Round(devEce, 5),
            train_wall_s = Math.Round(timer.StepSeconds, 2),
            train_cpu_s = Math.Round(fitCpu, 2),
            fit_wall_s = Math.Round(fitWall, 2),
            peak_working_set_mib = Math.Round(peakBytes / (1024.0 * 1024.0), 1),
            adapter_bytes = adapterBytes,
            adapter_folder = adapterFolder,
            epoch_history = fitted.History,
        };
        Console.WriteLine("RESULT " + JsonSerializer.Serialize(result, JsonOptions));
        return 0;
    }

    /// <summary>A fitted row: what is scored on dev, saved and counted.</summary>
    private sealed record Fitted(ITransformer Model, string PeftType, (long Trainable, long All) Parameters, Action<string> Save, IReadOnlyList<EpochSummary> History);

    private static Fitted FitPeft(MethodRecipe recipe, IDataView train, Settings s, double lr, IDataView dev, IProgress<TrainingProgress> progress)
    {
        var trainer = new PeftTextClassificationTrainer(Options(recipe, s, lr, dev, progress), ClassificationKind.Binary,
            recipe.Quantization is null ? null : new PeftTextClassifierFactory(recipe.Quantization));
        var model = trainer.Fit(train);
        // The count while training, as PEFT prints it (the fitted model's is smaller where an encoder was dropped).
        return new(model, model.PeftType, ((PeftTextClassifier)model.Scorer.Backend).ParametersWhenBuilt, model.SaveAdapter, model.TrainingHistory);
    }

    /// <summary>
    /// SVGD-LoRA: <see cref="MethodSst2Configs.SvgdParticles"/> LoRA particles (the lora row's adapters) trained jointly by
    /// SVGD at T = 1 with the median-heuristic bandwidth, the same recipe otherwise; dev is scored by the particles' mean
    /// probability.
    /// </summary>
    private static Fitted FitSvgd(MLContext ml, IDataView train, Settings s, double lr, IDataView dev, IProgress<TrainingProgress> progress)
    {
        var options = Recipe(new SvgdLoraTextClassificationTrainer.Options
        {
            Method = EnsembleMethod.Svgd,
            ParticleCount = MethodSst2Configs.SvgdParticles,
            LoraRank = 8,
            LoraAlpha = 16,
            LoraDropout = 0.05,
            TargetModules = ["q_proj", "v_proj"],
        }, s, lr, dev, progress);
        var model = ml.BinaryClassification.Trainers.SvgdLoraTextClassification(options).Fit(train);
        // The classifier carries every particle's adapter, so its count is already the ensemble's.
        return new(model, "SVGD_LORA", ((PeftTextClassifier)model.Classifier.Scorer.Backend).Peft.GetNumberOfTrainableParameters(), model.SaveEnsemble, model.TrainingHistory);
    }

    /// <summary>The sample's --full recipe with the method's config (LoRA+ ratio and all).</summary>
    private static PeftTextClassificationTrainer.Options Options(MethodRecipe recipe, Settings s, double lr, IDataView? dev, IProgress<TrainingProgress>? progress) => Recipe(
        new PeftTextClassificationTrainer.Options { PeftConfig = recipe.Config, LoraPlusLearningRateRatio = recipe.LoraPlusRatio, GaLore = recipe.GaLore },
        s, lr, dev, progress);

    /// <summary>The recipe every row shares (samples/LoraSentiment --full), set on <paramref name="options"/>.</summary>
    private static T Recipe<T>(T options, Settings s, double lr, IDataView? dev, IProgress<TrainingProgress>? progress) where T : TextClassificationTrainerOptions
    {
        options.BaseModel = s.Model;
        options.Sentence1ColumnName = nameof(SstRow.Sentence);
        options.LabelColumnName = nameof(SstRow.Label);
        options.MaxEpochs = s.Epochs;
        options.BatchSize = 32;
        options.MaxSequenceLength = 64;
        options.LearningRate = lr;
        options.WarmupRatio = 0.06;
        options.WeightDecay = 0.01;
        options.MaxGradientNorm = 1.0;
        options.BatchOrder = BatchOrder.Shuffled;
        options.ValidationSet = dev;
        options.Seed = s.Seed;
        options.Progress = progress;
        options.Log = line => Console.WriteLine($"  {line}");
        return options;
    }

    /// <summary>
    /// AdapterFusion's sources: serial b=8 adapters trained on MR and SUBJ (binary tasks from ../shared/data), cached
    /// under --cache by task, seed and lr so every fusion run and seed reuses them.
    /// </summary>
    private static List<string> EnsureFusionSources(Settings s)
    {
        var sources = new List<string>();
        foreach (var (task, negativeFile, positiveFile) in new[] { ("mr", "rt-polarity.neg", "rt-polarity.pos"), ("subj", "subj.objective", "subj.subjective") })
        {
            string rowsTag = s.SourceRows is { } n ? FormattableString.Invariant($"-rows{n}") : "";
            string folder = Path.Combine(s.Cache, FormattableString.Invariant($"houlsby-b{MethodSst2Configs.HoulsbyBottleneck}-{task}-lr{s.SourceLearningRate:G}-s{s.Seed}{rowsTag}"));
            sources.Add(folder);
            if (File.Exists(Path.Combine(folder, "adapter_model.safetensors")))
            {
                Console.WriteLine($"fusion source {task}: cached at {folder}");
                continue;
            }
            string dataFolder = Path.Combine(SharedFolder.TryFind() ?? Path.GetFullPath("shared"), "data", task);
            var rows = ReadLabeledLines(Path.Combine(dataFolder, negativeFile), false).Concat(ReadLabeledLines(Path.Combine(dataFolder, positiveFile), true)).ToList();
            var ml = new MLContext(seed: s.Seed);
            var all = ml.Data.LoadFromEnumerable(rows);
            // --source-rows (smoke runs only): a shuffled subset instead of the whole task.
            var data = s.SourceRows is { } take ? ml.Data.TakeRows(ml.Data.ShuffleRows(all, seed: s.Seed), take) : all;
            var recipe = new MethodRecipe(MethodSst2Configs.Houlsby(MethodSst2Configs.HoulsbyBottleneck, sparsity: 0), "fusion source");
            var options = Options(recipe, s with { Epochs = 2 }, s.SourceLearningRate, dev: null, progress: null);
            Console.WriteLine(FormattableString.Invariant($"fusion source {task}: training serial b={MethodSst2Configs.HoulsbyBottleneck} adapters on {s.SourceRows ?? rows.Count:N0} of {rows.Count:N0} rows, 2 epochs, lr {s.SourceLearningRate:G}"));
            var model = ml.BinaryClassification.Trainers.PeftTextClassification(options).Fit(data);
            model.SaveAdapter(folder);
        }
        return sources;
    }

    /// <summary>One sentence per line (MR and SUBJ ship as Latin-1 text), all with <paramref name="label"/>.</summary>
    private static IEnumerable<SstRow> ReadLabeledLines(string path, bool label)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"method-sst2 fusion: source data not found: {path}", path);
        return File.ReadLines(path, Encoding.Latin1).Select(l => l.Trim()).Where(l => l.Length > 0).Select(l => new SstRow { Sentence = l, Label = label });
    }

    private static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));

    /// <summary>Command-line settings; the defaults are the full recipe (all rows, 2 epochs, seed 1).</summary>
    private sealed record Settings
    {
        public string Method { get; init; } = "";

        public int Seed { get; init; } = 1;

        public double? LearningRate { get; init; }

        public double? LoraDropout { get; init; }

        public int? SourceRows { get; init; }

        public int? Rows { get; init; }

        public int Epochs { get; init; } = 2;

        public string Model { get; init; } = "";

        public string Data { get; init; } = "";

        public string TrainFile { get; init; } = "train.tsv";

        public string Cache { get; init; } = Path.Combine(Path.GetTempPath(), "peft-method-sst2-cache");

        public double SourceLearningRate { get; init; } = 1e-3;

        public string? Output { get; init; }

        public static Settings? Parse(string[] args)
        {
            // Without a shared folder the defaults point at ./shared; --model and --data can still name the files.
            string shared = SharedFolder.TryFind() ?? Path.GetFullPath("shared");
            var s = new Settings { Model = Path.Combine(shared, "models", "stories260K"), Data = Path.Combine(shared, "data", "sst2") };
            for (int i = 0; i < args.Length; i++)
            {
                string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
                double Real() => double.Parse(Value(), CultureInfo.InvariantCulture);
                s = args[i] switch
                {
                    "--method" => s with { Method = Value() },
                    "--seed" => s with { Seed = Int() },
                    "--lr" => s with { LearningRate = Real() },
                    "--rows" => s with { Rows = Int() },
                    "--epochs" => s with { Epochs = Int() },
                    "--data" => s with { Data = Value() },
                    "--train-file" => s with { TrainFile = Value() },
                    "--model" => s with { Model = Value() },
                    "--cache" => s with { Cache = Value() },
                    "--source-lr" => s with { SourceLearningRate = Real() },
                    "--output" => s with { Output = Value() },
                    "--lora-dropout" => s with { LoraDropout = Real() },
                    "--source-rows" => s with { SourceRows = Int() },
                    _ => throw new ArgumentException($"method-sst2: unknown option '{args[i]}' (see MethodSst2Benchmark.cs)"),
                };
            }
            if (!MethodSst2Configs.Names.Contains(s.Method))
            {
                Console.Error.WriteLine($"method-sst2: --method must be one of {string.Join(", ", MethodSst2Configs.Names)}; got '{s.Method}'");
                return null;
            }
            return s;
        }
    }

    /// <summary>One SST-2 row (sentence, label 0/1, header line).</summary>
    private sealed class SstRow
    {
        [LoadColumn(0)]
        public string Sentence { get; set; } = "";

        [LoadColumn(1)]
        public bool Label { get; set; }
    }

    /// <summary>The binary classifier's outputs with the row's label (for the NLL).</summary>
    private sealed class SstPrediction
    {
        public bool Label { get; set; }

        public float Score { get; set; }

        public float Probability { get; set; }
    }
}
