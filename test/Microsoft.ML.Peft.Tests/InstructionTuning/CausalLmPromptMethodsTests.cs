using Microsoft.ML.Data;
using Microsoft.ML.Peft.AdaptionPrompt;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.PrefixTuning;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

/// <summary>
/// <see cref="CausalLmFineTuningEstimator"/> with soft-prompt methods instead of LoRA (<c>Options.PeftConfig</c>), on
/// stories260K and a tiny instruction set in Alpaca's (instruction, input, output) columns: a few steps lower the
/// response loss, the generated column is present, and save → load gives the same generations and loss.
/// </summary>
[TestClass]
public sealed class CausalLmPromptMethodsTests
{
    private static string Temp(string what) => Path.Combine(Path.GetTempPath(), $"peft-{what}-{Guid.NewGuid():N}");

    private static List<string> Generated(MLContext ml, IDataView view) =>
        ml.Data.CreateEnumerable<GeneratedRow>(view, reuseRowObject: false).Select(r => r.Generated).ToList();

    public static IEnumerable<object[]> Methods =>
    [
        ["PROMPT_TUNING"],
        ["PREFIX_TUNING"],
        ["ADAPTION_PROMPT"],
    ];

    private static PeftConfig Config(string method) => method switch
    {
        "PROMPT_TUNING" => new PromptTuningConfig { NumVirtualTokens = 8 },
        "PREFIX_TUNING" => new PrefixTuningConfig { NumVirtualTokens = 8 },
        "ADAPTION_PROMPT" => new AdaptionPromptConfig { AdapterLen = 8, AdapterLayers = 2 },
        _ => throw new ArgumentOutOfRangeException(nameof(method)),
    };

    [TestMethod]
    [DynamicData(nameof(Methods))]
    public void FitTransformSaveLoad_SameGenerations(string method)
    {
        var ml = new MLContext();
        var train = SentimentInstructions.View(ml, 16);
        var heldOut = SentimentInstructions.View(ml, 3, skip: 400);
        var config = Config(method);
        string before = config.ToJson();
        var tuned = ml.Transforms.CausalLmFineTuning(new CausalLmFineTuningEstimator.Options
        {
            BaseModel = TestPaths.Stories260K, Template = SentimentInstructions.Template, Quantization = null, PeftConfig = config,
            MaxEpochs = 3, BatchSize = 8, LearningRate = 2e-2, WarmupRatio = 0, MaxSequenceLength = 96, MaxNewTokens = 4, Seed = 7,
            EndOfSequenceTokenId = 1,
        }).Fit(train);
        Assert.AreEqual(before, config.ToJson(), "Fit works on a copy of the caller's config");
        Assert.HasCount(3, tuned.TrainingHistory);
        Console.WriteLine($"{method}: {string.Join(" → ", tuned.TrainingHistory.Select(h => h.TrainLoss.ToString("F4", System.Globalization.CultureInfo.InvariantCulture)))}");
        Assert.IsTrue(tuned.TrainingHistory[^1].TrainLoss < tuned.TrainingHistory[0].TrainLoss, $"{method}: the response loss went down");

        var output = tuned.Transform(heldOut);
        Assert.AreEqual(TextDataViewType.Instance, output.Schema["Generated"].Type);
        var expected = Generated(ml, output);
        Assert.HasCount(3, expected);
        Assert.AreEqual(tuned.Generate(SentimentInstructions.Question, SentimentInstructions.Rows(1, skip: 400)[0].Input), expected[0]);

        string folder = Temp("causal-prompt");
        try
        {
            tuned.Save(folder);
            StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "adapter_config.json")), $"\"{config.PeftType}\"");
            using (var file = SafeTensorsFile.Open(Path.Combine(folder, "adapter_model.safetensors")))
            {
                var names = file.Names.ToList();
                if (method == "ADAPTION_PROMPT") Assert.HasCount(4, names, string.Join(", ", names));
                else CollectionAssert.AreEqual(new[] { "prompt_embeddings" }, names.ToArray());
            }
            var loaded = CausalLmFineTuningTransformer.Load(folder);
            CollectionAssert.AreEqual(expected, Generated(ml, loaded.Transform(heldOut)));
            Assert.AreEqual(tuned.Evaluate(heldOut).Loss, loaded.Evaluate(heldOut).Loss);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    private sealed class GeneratedRow
    {
        public string Generated { get; set; } = "";
    }
}
