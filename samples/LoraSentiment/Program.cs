// LoRA (or full fine-tuning) sentiment classification on SST-2 with an ML.NET pipeline:
//   dotnet run -c Release --project samples/LoraSentiment              (quick run: 20,000 shuffled rows, 1 epoch, ~35 s on a quiet 2-core machine)
//   dotnet run -c Release --project samples/LoraSentiment -- --full    (the full recipe: 67,349 rows, 2 epochs)
//   dotnet run -c Release --project samples/LoraSentiment -- --full --method full --seed 2   (full fine-tuning, lr 1e-3)
// Options: --method lora|full --model <folder|hub id> --data <sst2 folder> --rows N --epochs N --max-length N
//          --batch-size N --learning-rate X (default 2e-3 for lora, 1e-3 for full) --rank N --alpha X --seed N
//          --checkpoints <folder> --output <model.zip>
// Environment: PEFT_MODEL, PEFT_DATA override the default shared folders.
// The last line is machine-readable: RESULT {"method":..,"seed":..,"rows":..,"epochs":..,"dev_accuracy":..,
// "dev_nll":.. (mean cross-entropy, nats),"train_wall_s":.. (optimizer steps only, as the PyTorch reference times
// them),"seconds_per_epoch":..,"fit_wall_s":.. (tokenizing, loading and per-epoch validation included)}.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Peft;
using Microsoft.ML.Peft.Selective;

var settings = SampleSettings.Parse(args);
if (settings is null) return 2;
Console.WriteLine($"base model: {settings.Model}");
Console.WriteLine(FormattableString.Invariant($"method:     {settings.Method} (learning rate {settings.EffectiveLearningRate:G})"));
Console.WriteLine($"data:       {settings.Data} ({(settings.Rows is { } n ? $"{n:N0} shuffled training rows" : "all training rows")}, {settings.Epochs} epoch(s))");

var ml = new MLContext(seed: settings.Seed);
var trainAll = ml.Data.LoadFromTextFile<SentimentInput>(Path.Combine(settings.Data, "train.tsv"), hasHeader: true, trimWhitespace: true);
var train = settings.Rows is { } rows ? ml.Data.TakeRows(ml.Data.ShuffleRows(trainAll, seed: settings.Seed), rows) : trainAll;
var dev = ml.Data.LoadFromTextFile<SentimentInput>(Path.Combine(settings.Data, "dev.tsv"), hasHeader: true, trimWhitespace: true);

var timer = new StepTimer();
TextClassificationTrainerOptions options = settings.Method == "full"
    ? new PeftTextClassificationTrainer.Options { PeftConfig = SelectiveConfig.Full() }
    : new LoraTextClassificationTrainer.Options { LoraRank = settings.Rank, LoraAlpha = settings.Alpha, LoraDropout = 0.05, TargetModules = ["q_proj", "v_proj"] };
options.BaseModel = settings.Model;
options.Sentence1ColumnName = nameof(SentimentInput.Sentence);
options.LabelColumnName = nameof(SentimentInput.Label);
options.MaxEpochs = settings.Epochs;
options.BatchSize = settings.BatchSize;
options.MaxSequenceLength = settings.MaxLength;
options.LearningRate = settings.EffectiveLearningRate;
options.WarmupRatio = 0.06;
options.WeightDecay = 0.01;
options.BatchOrder = Microsoft.ML.Peft.Training.BatchOrder.Shuffled;
options.ValidationSet = dev;
options.Seed = settings.Seed;
options.CheckpointFolder = settings.Checkpoints;
options.CheckpointEverySteps = settings.Checkpoints is null ? 0 : 200;
options.Progress = timer;
options.Log = line => Console.WriteLine($"  {line}");

var watch = Stopwatch.StartNew();
var model = options switch
{
    PeftTextClassificationTrainer.Options peft => ml.BinaryClassification.Trainers.PeftTextClassification(peft).Fit(train),
    LoraTextClassificationTrainer.Options lora => ml.BinaryClassification.Trainers.LoraTextClassification(lora).Fit(train),
    _ => throw new InvalidOperationException("unknown options type"),
};
double fitSeconds = watch.Elapsed.TotalSeconds;
Console.WriteLine(FormattableString.Invariant($"trained in {fitSeconds:F1} s ({timer.StepSeconds:F1} s in optimizer steps)"));

watch.Restart();
var scored = model.Transform(dev);
var metrics = ml.BinaryClassification.Evaluate(scored, labelColumnName: nameof(SentimentInput.Label));
Console.WriteLine($"dev metrics ({watch.Elapsed.TotalSeconds:F1} s to score 872 rows):");
Console.WriteLine(FormattableString.Invariant($"  Accuracy           {metrics.Accuracy:F4}"));
Console.WriteLine(FormattableString.Invariant($"  AUC                {metrics.AreaUnderRocCurve:F4}"));
Console.WriteLine(FormattableString.Invariant($"  AUPRC              {metrics.AreaUnderPrecisionRecallCurve:F4}"));
Console.WriteLine(FormattableString.Invariant($"  F1                 {metrics.F1Score:F4}"));
Console.WriteLine(FormattableString.Invariant($"  Positive precision {metrics.PositivePrecision:F4}   recall {metrics.PositiveRecall:F4}"));
Console.WriteLine(FormattableString.Invariant($"  Negative precision {metrics.NegativePrecision:F4}   recall {metrics.NegativeRecall:F4}"));
Console.WriteLine(FormattableString.Invariant($"  Log-loss (bits)    {metrics.LogLoss:F4}   reduction {metrics.LogLossReduction:F4}"));
Console.WriteLine(metrics.ConfusionMatrix.GetFormattedConfusionTable());
var devRows = ml.Data.CreateEnumerable<SentimentPrediction>(scored, reuseRowObject: false).ToList();
// Mean cross-entropy in nats from the raw margin s = logit₁ − logit₀: −ln σ(±s) = softplus(∓s), in double.
double devNll = devRows.Average(r => Softplus(r.Label ? -r.Score : r.Score));
Console.WriteLine(FormattableString.Invariant($"  NLL (nats)         {devNll:F4}"));

var engine = ml.Model.CreatePredictionEngine<SentimentInput, SentimentPrediction>(model);
string[] examples =
[
    "a gorgeous , witty , seductive movie .",
    "the plot is nothing but boilerplate clichés from start to finish .",
    "it 's a charming and often affecting journey .",
    "an awkward , hollow and dull film .",
];
Console.WriteLine("predictions:");
foreach (var text in examples)
{
    var p = engine.Predict(new SentimentInput { Sentence = text });
    Console.WriteLine(FormattableString.Invariant($"  {(p.PredictedLabel ? "positive" : "negative"),-8} P(positive) = {p.Probability:F3}  \"{text}\""));
}

PeftModelPersistence.Save(ml, model, train.Schema, settings.Output);
Console.WriteLine($"saved {settings.Output} ({new FileInfo(settings.Output).Length / 1024.0:F1} KiB)");
var reloaded = PeftModelPersistence.Load(ml, settings.Output, out _);
var before = devRows;
var after = ml.Data.CreateEnumerable<SentimentPrediction>(reloaded.Transform(dev), reuseRowObject: false).ToList();
bool identical = before.Count == after.Count && before.Zip(after).All(x => x.First.Score.Equals(x.Second.Score) && x.First.PredictedLabel == x.Second.PredictedLabel);
Console.WriteLine($"reloaded model predictions identical on all {after.Count} dev rows: {(identical ? "yes" : "NO")}");
long trainRows = ml.Data.CreateEnumerable<SentimentInput>(train, reuseRowObject: true).LongCount();
var result = new
{
    method = settings.Method,
    seed = settings.Seed,
    rows = trainRows,
    epochs = settings.Epochs,
    learning_rate = settings.EffectiveLearningRate,
    dev_accuracy = Math.Round(metrics.Accuracy, 5),
    dev_nll = Math.Round(devNll, 5),
    train_wall_s = Math.Round(timer.StepSeconds, 2),
    seconds_per_epoch = Math.Round(timer.StepSeconds / settings.Epochs, 2),
    fit_wall_s = Math.Round(fitSeconds, 2),
    reload_identical = identical,
};
Console.WriteLine("RESULT " + System.Text.Json.JsonSerializer.Serialize(result));
return identical ? 0 : 1;

static double Softplus(double x) => x > 0 ? x + Math.Log(1 + Math.Exp(-x)) : Math.Log(1 + Math.Exp(x));

/// <summary>
/// Sums the wall time spent in optimizer steps (from the first step of an epoch's report stream to its last step),
/// leaving out the per-epoch validation, as the PyTorch reference's train_wall_s does.
/// </summary>
internal sealed class StepTimer : IProgress<TrainingProgress>
{
    private TimeSpan epochStart;
    private TimeSpan lastStep;
    private bool inEpoch;

    public double StepSeconds { get; private set; }

    public void Report(TrainingProgress value)
    {
        switch (value.Phase)
        {
            case TrainingPhase.Step:
                inEpoch = true;
                lastStep = value.Elapsed;
                break;
            case TrainingPhase.Validation or TrainingPhase.Completed when inEpoch:
                StepSeconds += (lastStep - epochStart).TotalSeconds;
                epochStart = value.Elapsed;
                inEpoch = false;
                break;
            case TrainingPhase.Validation or TrainingPhase.Completed or TrainingPhase.Resumed:
                epochStart = value.Elapsed;
                break;
        }
    }
}

/// <summary>One SST-2 row (train.tsv / dev.tsv: sentence, label 0/1, with a header).</summary>
internal sealed class SentimentInput
{
    [LoadColumn(0)]
    public string Sentence { get; set; } = "";

    [LoadColumn(1)]
    public bool Label { get; set; }
}

/// <summary>The binary classifier's outputs (and the dev row's label, for the NLL).</summary>
internal sealed class SentimentPrediction
{
    public bool Label { get; set; }

    public float Score { get; set; }

    public float Probability { get; set; }

    public bool PredictedLabel { get; set; }
}

/// <summary>Command-line settings with the quick-run defaults; <c>--full</c> switches to the reference recipe.</summary>
internal sealed record SampleSettings
{
    public string Model { get; init; } = "";

    public string Data { get; init; } = "";

    public int? Rows { get; init; } = 20000;

    public int Epochs { get; init; } = 1;

    public int MaxLength { get; init; } = 64;

    public int BatchSize { get; init; } = 32;

    /// <summary>"lora" (r=8/alpha=16 on q_proj,v_proj) or "full" (every parameter, the PyTorch reference's lr 1e-3).</summary>
    public string Method { get; init; } = "lora";

    /// <summary>--learning-rate, when given; otherwise the method's reference rate.</summary>
    public double? LearningRate { get; init; }

    public double EffectiveLearningRate => LearningRate ?? (Method == "full" ? 1e-3 : 2e-3);

    public int Rank { get; init; } = 8;

    public double Alpha { get; init; } = 16;

    public int Seed { get; init; } = 1;

    public string? Checkpoints { get; init; }

    public string Output { get; init; } = Path.Combine(Path.GetTempPath(), "lora-sentiment.zip");

    public static SampleSettings? Parse(string[] args)
    {
        string shared = FindShared();
        var s = new SampleSettings
        {
            Model = Environment.GetEnvironmentVariable("PEFT_MODEL") ?? Path.Combine(shared, "models", "stories260K"),
            Data = Environment.GetEnvironmentVariable("PEFT_DATA") ?? Path.Combine(shared, "data", "sst2"),
        };
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Real() => double.Parse(Value(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--full": s = s with { Rows = null, Epochs = 2 }; break;
                case "--method":
                    string method = Value();
                    if (method is not ("lora" or "full"))
                    {
                        Console.Error.WriteLine($"--method must be lora or full, got '{method}'");
                        return null;
                    }
                    s = s with { Method = method };
                    break;
                case "--model": s = s with { Model = Value() }; break;
                case "--data": s = s with { Data = Value() }; break;
                case "--rows": s = s with { Rows = Int() }; break;
                case "--epochs": s = s with { Epochs = Int() }; break;
                case "--max-length": s = s with { MaxLength = Int() }; break;
                case "--batch-size": s = s with { BatchSize = Int() }; break;
                case "--learning-rate": s = s with { LearningRate = Real() }; break;
                case "--rank": s = s with { Rank = Int() }; break;
                case "--alpha": s = s with { Alpha = Real() }; break;
                case "--seed": s = s with { Seed = Int() }; break;
                case "--checkpoints": s = s with { Checkpoints = Value() }; break;
                case "--output": s = s with { Output = Value() }; break;
                default:
                    Console.Error.WriteLine($"unknown option '{args[i]}'; see the header of samples/LoraSentiment/Program.cs");
                    return null;
            }
        }
        foreach (var (what, path) in new[] { ("training data", Path.Combine(s.Data, "train.tsv")), ("dev data", Path.Combine(s.Data, "dev.tsv")) })
        {
            if (!File.Exists(path))
            {
                Console.Error.WriteLine($"{what} not found: {path} (set --data or PEFT_DATA)");
                return null;
            }
        }
        return s;
    }

    /// <summary>The shared models/data folder: ../shared next to the repository holding this sample.</summary>
    private static string FindShared()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(Path.Combine(dir.FullName, "Peft.MLNet.sln"))) return Path.GetFullPath(Path.Combine(dir.FullName, "..", "shared"));
            }
        }
        return Path.GetFullPath("shared");
    }
}
