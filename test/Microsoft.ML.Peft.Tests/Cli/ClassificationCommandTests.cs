using System.Globalization;
using Microsoft.ML.Peft.Cli;

namespace Microsoft.ML.Peft.Tests.Cli;

/// <summary>
/// <c>peft classification</c> end to end on a small SST-2 subset with stories260K: metrics table, saved model, adapter,
/// consumption sample, reload; and the errors a user can cause, each one clear line with the right exit code.
/// </summary>
[TestClass]
public sealed class ClassificationCommandTests
{
    private static string tempRoot = "";
    private static string trainFile = "", devFile = "";

    [ClassInitialize]
    public static void WriteSubsets(TestContext context)
    {
        tempRoot = Path.Combine(Path.GetTempPath(), $"peft-cli-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tempRoot);
        trainFile = Path.Combine(tempRoot, "train.tsv");
        devFile = Path.Combine(tempRoot, "dev.tsv");
        File.WriteAllLines(trainFile, File.ReadLines(Path.Combine(TestPaths.Data, "sst2", "train.tsv")).Take(1 + 64));
        File.WriteAllLines(devFile, File.ReadLines(Path.Combine(TestPaths.Data, "sst2", "dev.tsv")).Take(1 + 24));
    }

    [ClassCleanup]
    public static void DeleteSubsets()
    {
        if (Directory.Exists(tempRoot)) Directory.Delete(tempRoot, recursive: true);
    }

    private static (int Code, string Output, string Error) Run(params string[] args)
    {
        using var output = new StringWriter(CultureInfo.InvariantCulture);
        using var error = new StringWriter(CultureInfo.InvariantCulture);
        int code = PeftCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    private static string[] Common(string output, params string[] extra) =>
    [
        "classification", "--dataset", trainFile, "--validation-dataset", devFile, "--text-col", "sentence", "--label-col", "label",
        "--model", TestPaths.Stories260K, "--epochs", "1", "--batch-size", "16", "--max-length", "24", "--seed", "1", "--output", output, .. extra,
    ];

    [TestMethod]
    [DataRow("lora")]
    [DataRow("full")]
    public void Classification_TrainsPrintsMetricsSavesAndReloads(string method)
    {
        string output = Path.Combine(tempRoot, "model-" + method);
        var (code, text, error) = Run(Common(output, "--method", method, "--learning-rate", "2e-3"));
        Assert.AreEqual(0, code, error + text);
        StringAssert.Contains(text, "| micro accuracy     |");
        StringAssert.Contains(text, method == "lora" ? "with LoRA (r=8, alpha=16)" : "with FULL_FINETUNING");
        string modelPath = Path.Combine(output, "model.zip");
        Assert.IsTrue(File.Exists(modelPath));
        Assert.IsTrue(File.Exists(Path.Combine(output, "adapter", "adapter_config.json")));
        Assert.IsTrue(File.Exists(Path.Combine(output, "adapter", "adapter_model.safetensors")));
        StringAssert.Contains(File.ReadAllText(Path.Combine(output, "adapter", "adapter_config.json")), method == "lora" ? "\"LORA\"" : "\"FULL_FINETUNING\"");
        string sample = File.ReadAllText(Path.Combine(output, "ConsumeModel.cs"));
        StringAssert.Contains(sample, "PeftModelPersistence.Load(ml, \"model.zip\", out _)");
        StringAssert.Contains(sample, "'sentence'");

        // The reloaded model's accuracy on the validation file is the printed micro accuracy.
        var ml = new MLContext();
        var reloaded = PeftModelPersistence.Load(ml, modelPath, out _);
        var dev = TabularData.Load(ml, devFile, "sentence", null, "label");
        var labels = ml.Data.CreateEnumerable<LabelRow>(dev, false).Select(r => r.Label).ToList();
        var predicted = ml.Data.CreateEnumerable<Prediction>(reloaded.Transform(dev), false).Select(r => r.PredictedLabel).ToList();
        Assert.AreEqual(24, predicted.Count);
        double accuracy = labels.Zip(predicted).Count(p => p.First == p.Second) / 24.0;
        StringAssert.Contains(text, string.Create(CultureInfo.InvariantCulture, $"| micro accuracy     | {accuracy,7:F4} |"));
    }

    [TestMethod]
    public void BadCommandLines_ExitTwo_WithTheReason()
    {
        Assert.AreEqual(2, Run().Code);
        var (code, _, error) = Run("train");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "unknown command 'train'");

        (code, _, error) = Run("classification", "--dataset", trainFile, "--text-col", "sentence", "--label-col", "label");
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--model is required");

        (code, _, error) = Run(Common("unused", "--epochs", "two").Where((a, i) => i < 11 || i > 12).ToArray());
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--epochs: 'two' is not a number");

        (code, _, error) = Run(Common("unused", "--method", "prefix"));
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--method 'prefix' is not supported (supported: lora, ia3, bitfit, full, head-only, layernorm)");

        (code, _, error) = Run(Common("unused", "--method", "full", "--rank", "4"));
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "--rank applies to --method lora only, not full");

        (code, _, error) = Run(Common("unused", "--frobnicate", "1"));
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, "unknown option '--frobnicate'");

        string missing = Path.Combine(tempRoot, "nope.tsv");
        (code, _, error) = Run("classification", "--dataset", missing, "--text-col", "sentence", "--label-col", "label", "--model", TestPaths.Stories260K);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, $"dataset not found: {missing}");

        (code, _, error) = Run("classification", "--dataset", trainFile, "--text-col", "text", "--label-col", "label", "--model", TestPaths.Stories260K);
        Assert.AreEqual(2, code);
        StringAssert.Contains(error, $"{trainFile} has no column 'text' (header: sentence, label)");
    }

    [TestMethod]
    public void RejectedModelOrMethod_ExitsOne_NamingTheCause()
    {
        string noModel = Path.Combine(tempRoot, "no-such-model");
        var args = Common(Path.Combine(tempRoot, "unused"));
        args[Array.IndexOf(args, "--model") + 1] = noModel;
        var (code, _, error) = Run(args);
        Assert.AreEqual(1, code, error);
        StringAssert.StartsWith(error, "peft: error: ");
        StringAssert.Contains(error, "no-such-model");

        (code, _, error) = Run(Common(Path.Combine(tempRoot, "unused"), "--method", "ia3", "--target-modules", "query,value"));
        Assert.AreEqual(1, code, error);
        StringAssert.Contains(error, "IA3");
        StringAssert.Contains(error, "model.layers.*.self_attn.k_proj");
    }

    private sealed class LabelRow
    {
        public string Label { get; set; } = "";
    }

    private sealed class Prediction
    {
        public string PredictedLabel { get; set; } = "";
    }
}
