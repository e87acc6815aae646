using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Data;

namespace Microsoft.ML.Peft.Cli;

/// <summary><c>peft classification</c>: fine-tune, evaluate, save the model and write a consumption sample.</summary>
internal static class ClassificationCommand
{
    public static readonly string[] Flags =
    [
        "--dataset", "--validation-dataset", "--text-col", "--text-col2", "--label-col", "--model", "--method", "--epochs", "--batch-size",
        "--learning-rate", "--max-length", "--rank", "--alpha", "--dropout", "--target-modules", "--seed", "--train-rows", "--checkpoints", "--output",
    ];

    public static readonly string[] Switches = [];

    public const string Usage = """
        Usage: peft classification --dataset <train.tsv|.csv> --text-col <name> --label-col <name> --model <folder|hub id> [options]

          --validation-dataset <file>  scored after each epoch and for the final metrics (default: 10% of --dataset)
          --text-col2 <name>           second text column for sentence-pair tasks
          --method <name>              lora (default), ia3, bitfit, full, head-only or layernorm
          --epochs <n>                 default 2          --batch-size <n>      default 32
          --learning-rate <x>          default 2e-4       --max-length <n>      tokens per example, default 128
          --rank <n>                   LoRA r, default 8  --alpha <x>           LoRA alpha, default 16
          --dropout <x>                LoRA dropout, default 0.05
          --target-modules <a,b>       lora/ia3: layers to adapt (default: PEFT's choice for the model type)
          --seed <n>                   default 0          --train-rows <n>      use only the first n training rows
          --checkpoints <folder>       resumable checkpoints (re-run the same command to resume)
          --output <folder>            default ./model: model.zip, adapter/ (PEFT format), ConsumeModel.cs
        Exit codes: 0 done, 1 data/model/method rejected (the message names the column, file or module), 2 bad command line.
        """;

    public static int Run(ClassificationSettings s, TextWriter output)
    {
        var ml = new MLContext(seed: s.Seed);
        var data = TabularData.Load(ml, s.Dataset, s.TextColumn, s.TextColumn2, s.LabelColumn);
        if (s.TrainRows is { } rows) data = ml.Data.TakeRows(data, rows);
        IDataView train = data, validation;
        if (s.ValidationDataset is { } path)
        {
            validation = TabularData.Load(ml, path, s.TextColumn, s.TextColumn2, s.LabelColumn);
        }
        else
        {
            var split = ml.Data.TrainTestSplit(data, testFraction: 0.1, seed: s.Seed);
            (train, validation) = (split.TrainSet, split.TestSet);
            output.WriteLine("no --validation-dataset: holding out 10% of the training rows for validation");
        }

        // The validation labels must map to the same keys as the training labels: the pipeline's MapValueToKey is fitted
        // on the same rows, so this transformer reproduces its mapping.
        var keys = ml.Transforms.Conversion.MapValueToKey(TabularData.Label).Fit(train);
        TextClassificationTrainerOptions options = s.Method == "lora"
            ? new LoraTextClassificationTrainer.Options { LoraRank = s.Rank, LoraAlpha = s.Alpha, LoraDropout = s.Dropout, TargetModules = s.TargetModules }
            : new PeftTextClassificationTrainer.Options { PeftConfig = MethodConfig(s) };
        options.BaseModel = s.Model;
        options.Sentence1ColumnName = TabularData.Text1;
        options.Sentence2ColumnName = s.TextColumn2 is null ? null : TabularData.Text2;
        options.LabelColumnName = TabularData.Label;
        options.MaxEpochs = s.Epochs;
        options.BatchSize = s.BatchSize;
        options.LearningRate = s.LearningRate;
        options.MaxSequenceLength = s.MaxLength;
        options.Seed = s.Seed;
        options.ValidationSet = keys.Transform(validation);
        options.CheckpointFolder = s.Checkpoints;
        options.CheckpointEverySteps = s.Checkpoints is null ? 0 : 100;
        options.Log = line => output.WriteLine($"  {line}");

        output.WriteLine(s.Method == "lora"
            ? $"fine-tuning {s.Model} with LoRA (r={s.Rank}, alpha={s.Alpha.ToString(CultureInfo.InvariantCulture)}) on {s.Dataset}"
            : $"fine-tuning {s.Model} with {options switch { PeftTextClassificationTrainer.Options { PeftConfig: { } c } => c.PeftType, _ => s.Method }} on {s.Dataset}");
        var watch = Stopwatch.StartNew();
        IEstimator<ITransformer> trainer = options switch
        {
            LoraTextClassificationTrainer.Options lora => ml.MulticlassClassification.Trainers.LoraTextClassification(lora),
            PeftTextClassificationTrainer.Options peft => ml.MulticlassClassification.Trainers.PeftTextClassification(peft),
            _ => throw new InvalidOperationException("unknown options type"),
        };
        var estimator = ml.Transforms.Conversion.MapValueToKey(TabularData.Label).Append(trainer)
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = estimator.Fit(train);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"trained in {watch.Elapsed.TotalSeconds:F1} s"));

        var scored = model.Transform(validation);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        WriteMetrics(output, metrics, ClassNames(scored));

        Directory.CreateDirectory(s.Output);
        string modelPath = Path.Combine(s.Output, "model.zip");
        PeftModelPersistence.Save(ml, model, data.Schema, modelPath);
        var classifier = model.SelectMany(t => t is IEnumerable<ITransformer> chain ? chain : [t]).OfType<PeftTextClassificationTransformer>().Single();
        classifier.SaveAdapter(Path.Combine(s.Output, "adapter"));
        File.WriteAllText(Path.Combine(s.Output, "ConsumeModel.cs"), ConsumptionSample.Code(s));
        output.WriteLine($"saved {modelPath}, the PEFT adapter in {Path.Combine(s.Output, "adapter")} and a consumption sample in {Path.Combine(s.Output, "ConsumeModel.cs")}");
        return 0;
    }

    /// <summary>The PEFT config of a non-LoRA --method (IA3 targets default to PEFT's for the model type).</summary>
    private static Tuners.PeftConfig MethodConfig(ClassificationSettings s) => s.Method switch
    {
        "ia3" => new IA3.IA3Config { TargetModules = s.TargetModules is null ? null : Tuners.ModuleSelector.FromNames(s.TargetModules) },
        "bitfit" => Selective.SelectiveConfig.BitFit(),
        "full" => Selective.SelectiveConfig.Full(),
        "head-only" => new Selective.SelectiveConfig(Selective.SelectiveMethod.HeadOnly) { TaskType = "SEQ_CLS" },
        "layernorm" => Selective.SelectiveConfig.LayerNormTuning(),
        _ => throw new CommandLineException($"--method '{s.Method}' is not supported"),
    };

    private static string[] ClassNames(IDataView scored)
    {
        VBuffer<ReadOnlyMemory<char>> names = default;
        scored.Schema["Score"].Annotations.GetValue("SlotNames", ref names);
        return names.DenseValues().Select(n => n.ToString()).ToArray();
    }

    private static void WriteMetrics(TextWriter output, MulticlassClassificationMetrics m, string[] classes)
    {
        output.WriteLine();
        output.WriteLine("| metric             | value   |");
        output.WriteLine("|--------------------|---------|");
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| micro accuracy     | {m.MicroAccuracy,7:F4} |"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| macro accuracy     | {m.MacroAccuracy,7:F4} |"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| log-loss           | {m.LogLoss,7:F4} |"));
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| log-loss reduction | {m.LogLossReduction,7:F4} |"));
        output.WriteLine();
        output.WriteLine("| class | precision | recall |");
        output.WriteLine("|-------|-----------|--------|");
        for (int c = 0; c < classes.Length; c++)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {classes[c]} | {m.ConfusionMatrix.PerClassPrecision[c],9:F4} | {m.ConfusionMatrix.PerClassRecall[c],6:F4} |"));
        }
        output.WriteLine();
        output.WriteLine(m.ConfusionMatrix.GetFormattedConfusionTable());
    }
}
