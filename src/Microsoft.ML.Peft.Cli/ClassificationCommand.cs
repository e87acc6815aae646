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
          --method lora                fine-tuning method (default lora)
          --epochs <n>                 default 2          --batch-size <n>      default 32
          --learning-rate <x>          default 2e-4       --max-length <n>      tokens per example, default 128
          --rank <n>                   LoRA r, default 8  --alpha <x>           LoRA alpha, default 16
          --dropout <x>                LoRA dropout, default 0.05
          --target-modules <a,b>       layers to adapt (default: PEFT's choice for the model type)
          --seed <n>                   default 0          --train-rows <n>      use only the first n training rows
          --checkpoints <folder>       resumable checkpoints (re-run the same command to resume)
          --output <folder>            default ./model: model.zip, adapter/ (PEFT format), ConsumeModel.cs
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
        var options = new LoraTextClassificationTrainer.Options
        {
            BaseModel = s.Model,
            Sentence1ColumnName = TabularData.Text1,
            Sentence2ColumnName = s.TextColumn2 is null ? null : TabularData.Text2,
            LabelColumnName = TabularData.Label,
            MaxEpochs = s.Epochs,
            BatchSize = s.BatchSize,
            LearningRate = s.LearningRate,
            MaxSequenceLength = s.MaxLength,
            LoraRank = s.Rank,
            LoraAlpha = s.Alpha,
            LoraDropout = s.Dropout,
            TargetModules = s.TargetModules,
            Seed = s.Seed,
            ValidationSet = keys.Transform(validation),
            CheckpointFolder = s.Checkpoints,
            CheckpointEverySteps = s.Checkpoints is null ? 0 : 100,
            Log = line => output.WriteLine($"  {line}"),
        };

        output.WriteLine($"fine-tuning {s.Model} with LoRA (r={s.Rank}, alpha={s.Alpha.ToString(CultureInfo.InvariantCulture)}) on {s.Dataset}");
        var watch = Stopwatch.StartNew();
        var estimator = ml.Transforms.Conversion.MapValueToKey(TabularData.Label).Append(ml.MulticlassClassification.Trainers.LoraTextClassification(options))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
        var model = estimator.Fit(train);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"trained in {watch.Elapsed.TotalSeconds:F1} s"));

        var scored = model.Transform(validation);
        var metrics = ml.MulticlassClassification.Evaluate(scored);
        WriteMetrics(output, metrics, ClassNames(scored));

        Directory.CreateDirectory(s.Output);
        string modelPath = Path.Combine(s.Output, "model.zip");
        PeftModelPersistence.Save(ml, model, data.Schema, modelPath);
        var lora = model.SelectMany(t => t is IEnumerable<ITransformer> chain ? chain : [t]).OfType<PeftTextClassificationTransformer>().Single();
        lora.SaveAdapter(Path.Combine(s.Output, "adapter"));
        File.WriteAllText(Path.Combine(s.Output, "ConsumeModel.cs"), ConsumptionSample.Code(s));
        output.WriteLine($"saved {modelPath}, the PEFT adapter in {Path.Combine(s.Output, "adapter")} and a consumption sample in {Path.Combine(s.Output, "ConsumeModel.cs")}");
        return 0;
    }

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
