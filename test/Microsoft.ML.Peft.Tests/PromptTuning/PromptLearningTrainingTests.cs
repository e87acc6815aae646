using Microsoft.ML.Peft.AdaptionPrompt;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.PrefixTuning;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.PTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Training;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Training;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.PromptTuning;

/// <summary>
/// Every soft-prompt method trains through the same path as LoRA — <see cref="PeftModel.Inject"/> then the
/// classification trainer's loop (PeftTextClassifier + TrainingLoop) — on the first 96 SST-2 training sentences with
/// stories260K: the mean loss of the last epoch is below the first epoch's.
/// </summary>
[TestClass]
public sealed class PromptLearningTrainingTests
{
    private static readonly Lazy<List<ClassificationExample>> Examples = new(() =>
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        return File.ReadLines(Path.Combine(TestPaths.Data, "sst2", "train.tsv")).Skip(1).Take(96)
            .Select(line => line.Split('\t'))
            .Select(parts => new ClassificationExample(tokenizer.EncodeToIds(parts[0]).Take(32).ToArray(), null, int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture)))
            .ToList();
    });

    public static IEnumerable<object[]> Methods =>
    [
        ["PROMPT_TUNING", 0.05],
        ["PREFIX_TUNING", 0.05],
        ["PREFIX_TUNING+projection", 0.01],
        ["P_TUNING", 0.01],
        ["P_TUNING+LSTM", 0.01],
        ["ADAPTION_PROMPT", 0.02],
    ];

    private static PeftConfig Config(string method) => method switch
    {
        "PROMPT_TUNING" => new PromptTuningConfig { NumVirtualTokens = 8, TaskType = "SEQ_CLS" },
        "PREFIX_TUNING" => new PrefixTuningConfig { NumVirtualTokens = 8, TaskType = "SEQ_CLS" },
        "PREFIX_TUNING+projection" => new PrefixTuningConfig { NumVirtualTokens = 8, PrefixProjection = true, EncoderHiddenSize = 32, TaskType = "SEQ_CLS" },
        "P_TUNING" => new PromptEncoderConfig { NumVirtualTokens = 8, EncoderHiddenSize = 32, TaskType = "SEQ_CLS" },
        "P_TUNING+LSTM" => new PromptEncoderConfig { NumVirtualTokens = 8, EncoderHiddenSize = 16, ReparameterizationType = PromptEncoderReparameterization.Lstm, TaskType = "SEQ_CLS" },
        "ADAPTION_PROMPT" => new AdaptionPromptConfig { AdapterLen = 8, AdapterLayers = 2, TaskType = "SEQ_CLS" },
        _ => throw new ArgumentException(method),
    };

    [TestMethod]
    [DynamicData(nameof(Methods))]
    public void ShortSst2Run_WithStories260K_LowersTheLoss(string method, double learningRate)
    {
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Stories260K, numLabels: 2);
        var peft = PeftModel.Inject(model, Config(method), generator: new Generator(11));
        var backend = new PeftTextClassifier(model, peft, TokenizerLoader.FromFolder(TestPaths.Stories260K),
            new BaseModelReference { NameOrPath = TestPaths.Stories260K }, new Generator(0));
        var settings = new TrainingSettings { Epochs = 3, BatchSize = 16, LearningRate = learningRate, WarmupRatio = 0, Seed = 3 };
        var losses = new Dictionary<int, List<double>>();
        model.Train();
        new TrainingLoop(backend, settings, backend.PaddingId, new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase != TrainingPhase.Step) return;
            if (!losses.TryGetValue(p.Epoch, out var list)) losses[p.Epoch] = list = [];
            list.Add(p.Loss);
        })).Run(Examples.Value, null);
        double first = losses[losses.Keys.Min()].Average(), last = losses[losses.Keys.Max()].Average();
        Console.WriteLine($"{method}: mean loss epoch 1 {first:F4} → epoch 3 {last:F4}; {peft.TrainableParametersSummary()}");
        Assert.IsTrue(last < first - 0.01, $"{method}: loss {first:F4} → {last:F4} did not go down");
    }
}
