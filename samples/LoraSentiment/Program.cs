// LoRA sentiment classification on SST-2 with an ML.NET pipeline:
//   dotnet run -c Release --project samples/LoraSentiment              (quick run: 20,000 shuffled rows, 1 epoch, ~3 min)
//   dotnet run -c Release --project samples/LoraSentiment -- --full    (the full recipe: 67,349 rows, 2 epochs)
// Options: --model <folder|hub id> --data <sst2 folder> --rows N --epochs N --max-length N --batch-size N
//          --learning-rate X --rank N --alpha X --seed N --checkpoints <folder> --output <model.zip>
// Environment: PEFT_MODEL, PEFT_DATA override the default shared folders.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Peft;

var settings = SampleSettings.Parse(args);
if (settings is null) return 2;
Console.WriteLine($"base model: {settings.Model}");
Console.WriteLine($"data:       {settings.Data} ({(settings.Rows is { } n ? $"first {n:N0} training rows" : "all training rows")}, {settings.Epochs} epoch(s))");

var ml = new MLContext(seed: settings.Seed);
var trainAll = ml.Data.LoadFromTextFile<SentimentInput>(Path.Combine(settings.Data, "train.tsv"), hasHeader: true, trimWhitespace: true);
var train = settings.Rows is { } rows ? ml.Data.TakeRows(ml.Data.ShuffleRows(trainAll, seed: settings.Seed), rows) : trainAll;
var dev = ml.Data.LoadFromTextFile<SentimentInput>(Path.Combine(settings.Data, "dev.tsv"), hasHeader: true, trimWhitespace: true);

var options = new LoraTextClassificationTrainer.Options
{
    BaseModel = settings.Model,
    Sentence1ColumnName = nameof(SentimentInput.Sentence),
    LabelColumnName = nameof(SentimentInput.Label),
    MaxEpochs = settings.Epochs,
    BatchSize = settings.BatchSize,
    MaxSequenceLength = settings.MaxLength,
    LearningRate = settings.LearningRate,
    WarmupRatio = 0.06,
    WeightDecay = 0.01,
    LoraRank = settings.Rank,
    LoraAlpha = settings.Alpha,
    LoraDropout = 0.05,
    TargetModules = ["q_proj", "v_proj"],
    BatchOrder = Microsoft.ML.Peft.Training.BatchOrder.Shuffled,
    ValidationSet = dev,
    Seed = settings.Seed,
    CheckpointFolder = settings.Checkpoints,
    CheckpointEverySteps = settings.Checkpoints is null ? 0 : 200,
    Log = line => Console.WriteLine($"  {line}"),
};

var watch = Stopwatch.StartNew();
var model = ml.BinaryClassification.Trainers.LoraTextClassification(options).Fit(train);
Console.WriteLine($"trained in {watch.Elapsed.TotalSeconds:F1} s");

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
var before = ml.Data.CreateEnumerable<SentimentPrediction>(scored, reuseRowObject: false).ToList();
var after = ml.Data.CreateEnumerable<SentimentPrediction>(reloaded.Transform(dev), reuseRowObject: false).ToList();
bool identical = before.Count == after.Count && before.Zip(after).All(x => x.First.Score.Equals(x.Second.Score) && x.First.PredictedLabel == x.Second.PredictedLabel);
Console.WriteLine($"reloaded model predictions identical on all {after.Count} dev rows: {(identical ? "yes" : "NO")}");
return identical ? 0 : 1;

/// <summary>One SST-2 row (train.tsv / dev.tsv: sentence, label 0/1, with a header).</summary>
internal sealed class SentimentInput
{
    [LoadColumn(0)]
    public string Sentence { get; set; } = "";

    [LoadColumn(1)]
    public bool Label { get; set; }
}

/// <summary>The binary classifier's outputs.</summary>
internal sealed class SentimentPrediction
{
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

    public double LearningRate { get; init; } = 2e-3;

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
