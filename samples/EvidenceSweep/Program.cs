// Evidence-driven LoRA sweep with ML.NET AutoML: every configuration (rank × learning rate) is trained on an SST-2
// subset, scored by its Laplace-LoRA log marginal likelihood on the TRAINING data (the AutoML loss; with --conditional,
// the conditional log p(D2 | D1) of a held-out share of the training rows), and also
// evaluated on the dev set; the sample compares the configuration evidence picks with the one dev accuracy picks and
// prints the Spearman rank correlation between evidence and dev accuracy.
//   dotnet run -c Release --project samples/EvidenceSweep
// Options: --dataset sst2|subj|mr --model <folder> --data <data folder> --rows N --epochs N --max-length N --ranks 2,8
//          --learning-rates 3e-4,1e-3 --alpha X --seed N --laplace-dev (also score dev with the Laplace probit predictive)
//          --conditional F (score by the conditional evidence log p(D2 | D1): train on 1 - F of the rows, score the other F)
//          --min-words N (SST-2: draw training rows only from phrases of at least N words; dev sentences average 19.5)
// Environment: PEFT_MODEL, PEFT_DATA override the default shared folders.
using System.Diagnostics;
using System.Globalization;
using Microsoft.ML;
using Microsoft.ML.AutoML;
using Microsoft.ML.Data;
using Microsoft.ML.Peft;
using Microsoft.ML.Peft.AutoML;
using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;

var settings = SweepSettings.Parse(args);
if (settings is null) return 2;
int configurations = settings.Ranks.Length * settings.LearningRates.Length;
Console.WriteLine($"base model: {settings.Model}");
Console.WriteLine($"data:       {settings.Dataset} from {settings.Data} ({settings.Rows:N0} shuffled training rows, {settings.Epochs} epochs)");
Console.WriteLine($"sweep:      {configurations} configurations: rank {{{string.Join(", ", settings.Ranks)}}} x learning rate {{{string.Join(", ", settings.LearningRates.Select(r => r.ToString(CultureInfo.InvariantCulture)))}}}, alpha {settings.Alpha.ToString(CultureInfo.InvariantCulture)}");
if (settings.Conditional is { } heldOut)
    Console.WriteLine(Invariant($"score:      conditional evidence log p(D2 | D1): each trial trains on {1 - heldOut:P0} of the training rows (D1) and scores the other {heldOut:P0} (D2)"));

var ml = new MLContext(seed: settings.Seed);
var (train, dev) = SweepData.Load(ml, settings);
Console.WriteLine($"dev:        {dev.GetRowCount() ?? ml.Data.CreateEnumerable<Sst2Row>(dev, false).Count():N0} rows");

var template = new LoraTextClassificationTrainer.Options
{
    BaseModel = settings.Model,
    Sentence1ColumnName = nameof(Sst2Row.Sentence),
    LabelColumnName = nameof(Sst2Row.Label),
    MaxEpochs = settings.Epochs,
    BatchSize = 32,
    MaxSequenceLength = settings.MaxLength,
    WarmupRatio = 0.06,
    WeightDecay = 0.01,
    LoraDropout = 0.05,
    TargetModules = ["q_proj", "v_proj"],
    Seed = settings.Seed,
};
var space = new SearchSpace<LoraSweepParameters>
{
    ["Rank"] = new ChoiceOption(settings.Ranks.Cast<object>().ToArray()),
    ["LearningRate"] = new ChoiceOption(settings.LearningRates.Cast<object>().ToArray()),
    ["Alpha"] = new ChoiceOption(settings.Alpha),
};
var pipeline = ml.Transforms.Conversion.MapValueToKey(nameof(Sst2Row.Label))
    .Append(ml.Auto().MulticlassLoraTextClassification(template, space))
    .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));

var monitor = new SweepMonitor();
var watch = Stopwatch.StartNew();
var best = ml.Auto().CreateExperiment()
    .SetPipeline(pipeline)
    .SetDataset(train, dev)
    .SetTrialRunner(services => new LoraEvidenceTrialRunner(services, new LoraEvidenceOptions { LaplaceValidation = settings.LaplaceDev, ConditionalFraction = settings.Conditional }))
    .SetGridSearchTuner()
    .SetMaxModelToExplore(configurations)
    .SetMonitor(monitor)
    .Run();
Console.WriteLine($"sweep finished in {watch.Elapsed.TotalSeconds:F0} s");

var trials = monitor.Trials.OrderBy(t => t.TrialSettings.TrialId).ToList();
Console.WriteLine();
string conditionalHeader = settings.Conditional is null ? "" : "  log p(D2|D1)";
Console.WriteLine($"trial  rank  learning rate  log evidence{conditionalHeader}  prior λ   train NLL  dev accuracy  dev NLL{(settings.LaplaceDev ? "  Laplace dev NLL" : "")}  time (s)");
foreach (var t in trials)
{
    var e = t.Evidence;
    var (rank, lr) = Config(t);
    string conditional = e.ConditionalLogMarginalLikelihood is { } c ? Invariant($"  {c,12:F2}") : "";
    Console.WriteLine(Invariant($"{t.TrialSettings.TrialId,5}  {rank,4}  {lr,13:G3}  {e.LogMarginalLikelihood,12:F2}{conditional}  {e.PriorPrecision,7:G3}  {-e.TrainLogLikelihood / e.TrainingExamples,9:F4}  {e.ValidationAccuracy,12:F4}  {e.ValidationLogLoss,7:F4}  {(settings.LaplaceDev ? Invariant($"{e.LaplaceValidationLogLoss,15:F4}  ") : "")}{t.DurationInMilliseconds / 1000,8:F1}"));
}

// The AutoML metric: log p(D), or log p(D2 | D1) with --conditional.
string scoreName = settings.Conditional is null ? "log evidence" : "log p(D2|D1)";
var byEvidence = trials.MaxBy(t => t.Metric)!;
var byAccuracy = trials.OrderByDescending(t => t.Evidence.ValidationAccuracy).ThenBy(t => t.Evidence.ValidationLogLoss).First();
Console.WriteLine();
Console.WriteLine($"AutoML's best trial (lowest Loss = -{scoreName}): {best.TrialSettings.TrialId}");
Report("chosen by evidence:      ", byEvidence);
Report("chosen by dev accuracy:  ", byAccuracy);
if (trials.Count < 2)
{
    Console.WriteLine("rank correlation needs at least 2 configurations");
    return 0;
}
double rho = RankCorrelation.Spearman(trials.Select(t => t.Metric).ToArray(), trials.Select(t => t.Evidence.ValidationAccuracy!.Value).ToArray());
double rhoNll = RankCorrelation.Spearman(trials.Select(t => t.Metric).ToArray(), trials.Select(t => -t.Evidence.ValidationLogLoss!.Value).ToArray());
Console.WriteLine(Invariant($"Spearman rank correlation, {scoreName} vs dev accuracy: {rho:F3} (target >= 0.6: {(rho >= 0.6 ? "met" : "NOT met")})"));
Console.WriteLine(Invariant($"Spearman rank correlation, {scoreName} vs -dev NLL:     {rhoNll:F3}"));
if (settings.Conditional is not null)
{
    double rhoPlain = RankCorrelation.Spearman(trials.Select(t => t.Evidence.LogMarginalLikelihood).ToArray(), trials.Select(t => t.Evidence.ValidationAccuracy!.Value).ToArray());
    Console.WriteLine(Invariant($"Spearman rank correlation, log evidence of D1 vs dev accuracy: {rhoPlain:F3}"));
}
return 0;

static (int Rank, double LearningRate) Config(TrialResult t)
{
    var p = t.TrialSettings.Parameter["_pipeline_"]["e1"].AsType<LoraSweepParameters>();
    return (p.Rank, p.LearningRate);
}

static void Report(string what, LoraEvidenceTrialResult t)
{
    var (rank, lr) = Config(t);
    var e = t.Evidence;
    Console.WriteLine(Invariant($"{what}trial {t.TrialSettings.TrialId} (rank {rank}, lr {lr:G3}): AutoML metric {t.Metric:F2}, dev accuracy {e.ValidationAccuracy:F4}, dev NLL {e.ValidationLogLoss:F4}"));
}

static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);

/// <summary>Collects the evidence trials and prints one line per finished trial.</summary>
internal sealed class SweepMonitor : IMonitor
{
    public List<LoraEvidenceTrialResult> Trials { get; } = [];

    public void ReportBestTrial(TrialResult result)
    {
    }

    public void ReportCompletedTrial(TrialResult result)
    {
        var t = (LoraEvidenceTrialResult)result;
        Trials.Add(t);
        Console.WriteLine(FormattableString.Invariant($"  trial {t.TrialSettings.TrialId}: AutoML metric {t.Metric:F2}, dev accuracy {t.Evidence.ValidationAccuracy:F4} ({t.DurationInMilliseconds / 1000:F1} s)"));
    }

    public void ReportFailTrial(TrialSettings settings, Exception? exception = null) =>
        Console.WriteLine($"  trial {settings.TrialId} failed: {exception?.Message ?? "cancelled"}");

    public void ReportRunningTrial(TrialSettings settings)
    {
    }
}

/// <summary>One labeled sentence (SST-2 train.tsv / dev.tsv columns: sentence, label 0/1, with a header); the label is text, mapped to a key.</summary>
internal sealed class Sst2Row
{
    [LoadColumn(0)]
    public string Sentence { get; set; } = "";

    [LoadColumn(1)]
    public string Label { get; set; } = "";
}

/// <summary>The training subset and the dev set of the chosen data set.</summary>
internal static class SweepData
{
    /// <summary>
    /// SST-2: shuffled train.tsv rows and the 872-row dev.tsv. SUBJ / MR (one sentence per line, two files, no split):
    /// both files shuffled together, the first N rows train, the next 1,000 dev.
    /// </summary>
    public static (IDataView Train, IDataView Dev) Load(MLContext ml, SweepSettings s)
    {
        if (s.Dataset == "sst2")
        {
            var all = ml.Data.LoadFromTextFile<Sst2Row>(Path.Combine(s.Data, "train.tsv"), hasHeader: true);
            if (s.MinWords > 0)
            {
                all = ml.Data.LoadFromEnumerable(ml.Data.CreateEnumerable<Sst2Row>(all, reuseRowObject: false)
                    .Where(r => r.Sentence.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length >= s.MinWords).ToList());
            }
            return (ml.Data.TakeRows(ml.Data.ShuffleRows(all, seed: s.Seed), s.Rows), ml.Data.LoadFromTextFile<Sst2Row>(Path.Combine(s.Data, "dev.tsv"), hasHeader: true));
        }
        var (negative, positive) = s.Dataset == "subj" ? ("subj.objective", "subj.subjective") : ("rt-polarity.neg", "rt-polarity.pos");
        var rows = Lines(Path.Combine(s.Data, negative), "0").Concat(Lines(Path.Combine(s.Data, positive), "1")).ToArray();
        new Random(s.Seed).Shuffle(rows);
        if (rows.Length < s.Rows + 1000) throw new InvalidOperationException($"{s.Dataset} has {rows.Length} rows; --rows {s.Rows} leaves fewer than 1,000 for dev");
        return (ml.Data.LoadFromEnumerable(rows.Take(s.Rows).ToArray()), ml.Data.LoadFromEnumerable(rows.Skip(s.Rows).Take(1000).ToArray()));
    }

    // The MR files are Latin-1; reading them so keeps every byte a character.
    private static IEnumerable<Sst2Row> Lines(string path, string label) =>
        File.ReadLines(path, System.Text.Encoding.Latin1).Where(l => l.Trim().Length > 0).Select(l => new Sst2Row { Sentence = l.Trim(), Label = label });
}

/// <summary>Command-line settings with the defaults of the recorded run.</summary>
internal sealed record SweepSettings
{
    public string Model { get; init; } = "";

    public string Data { get; init; } = "";

    public string Dataset { get; init; } = "sst2";

    public int Rows { get; init; } = 2000;

    public int Epochs { get; init; } = 6;

    public int MaxLength { get; init; } = 32;

    public int[] Ranks { get; init; } = [2, 8];

    public double[] LearningRates { get; init; } = [1e-3, 3e-3, 1e-2, 3e-2];

    public double Alpha { get; init; } = 16;

    public int Seed { get; init; } = 1;

    public bool LaplaceDev { get; init; }

    public double? Conditional { get; init; }

    public int MinWords { get; init; }

    public static SweepSettings? Parse(string[] args)
    {
        string shared = FindShared();
        var s = new SweepSettings
        {
            Model = Environment.GetEnvironmentVariable("PEFT_MODEL") ?? Path.Combine(shared, "models", "stories260K"),
        };
        for (int i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Int() => int.Parse(Value(), CultureInfo.InvariantCulture);
            double Real() => double.Parse(Value(), CultureInfo.InvariantCulture);
            switch (args[i])
            {
                case "--model": s = s with { Model = Value() }; break;
                case "--dataset": s = s with { Dataset = Value() }; break;
                case "--data": s = s with { Data = Value() }; break;
                case "--rows": s = s with { Rows = Int() }; break;
                case "--epochs": s = s with { Epochs = Int() }; break;
                case "--max-length": s = s with { MaxLength = Int() }; break;
                case "--ranks": s = s with { Ranks = Value().Split(',').Select(v => int.Parse(v, CultureInfo.InvariantCulture)).ToArray() }; break;
                case "--learning-rates": s = s with { LearningRates = Value().Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray() }; break;
                case "--alpha": s = s with { Alpha = Real() }; break;
                case "--seed": s = s with { Seed = Int() }; break;
                case "--laplace-dev": s = s with { LaplaceDev = true }; break;
                case "--conditional": s = s with { Conditional = Real() }; break;
                case "--min-words": s = s with { MinWords = Int() }; break;
                default:
                    Console.Error.WriteLine($"unknown option '{args[i]}'; see the header of samples/EvidenceSweep/Program.cs");
                    return null;
            }
        }
        if (s.Dataset is not ("sst2" or "subj" or "mr"))
        {
            Console.Error.WriteLine($"unknown --dataset '{s.Dataset}': sst2, subj or mr");
            return null;
        }
        if (s.Data.Length == 0) s = s with { Data = Environment.GetEnvironmentVariable("PEFT_DATA") ?? Path.Combine(shared, "data", s.Dataset) };
        string[] files = s.Dataset switch { "sst2" => ["train.tsv", "dev.tsv"], "subj" => ["subj.objective", "subj.subjective"], _ => ["rt-polarity.neg", "rt-polarity.pos"] };
        foreach (var (what, path) in files.Select(f => ("data file", Path.Combine(s.Data, f))))
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
