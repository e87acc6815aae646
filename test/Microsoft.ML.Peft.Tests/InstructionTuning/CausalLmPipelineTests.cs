using Microsoft.ML.Data;
using Microsoft.ML.Peft.InstructionTuning;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.QLora;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

/// <summary><see cref="CausalLmFineTuningEstimator"/> on stories260K in ML.NET pipelines, with and without a 4-bit base.</summary>
[TestClass]
public sealed class CausalLmPipelineTests
{
    private static CausalLmFineTuningEstimator.Options Options(QuantizationOptions? quantization) => new()
    {
        BaseModel = TestPaths.Stories260K, Template = SentimentInstructions.Template, Quantization = quantization,
        LoraRank = 8, LoraAlpha = 16, MaxEpochs = 2, BatchSize = 8, LearningRate = 5e-3, MaxSequenceLength = 128,
        MaxNewTokens = 4, Seed = 7, EndOfSequenceTokenId = 1,
    };

    private static string Temp(string what) => Path.Combine(Path.GetTempPath(), $"peft-{what}-{Guid.NewGuid():N}");

    private static List<string> Generated(MLContext ml, IDataView view) =>
        ml.Data.CreateEnumerable<GeneratedRow>(view, reuseRowObject: false).Select(r => r.Generated).ToList();

    [TestMethod]
    public void QLoRA_FitTransformSaveLoad_SameGenerations()
    {
        var ml = new MLContext();
        var train = SentimentInstructions.View(ml, 32);
        var heldOut = SentimentInstructions.View(ml, 5, skip: 400);
        var pipeline = ml.Transforms.CopyColumns("Question", "Instruction")
            .Append(ml.Transforms.CausalLmFineTuning(Options(new QuantizationOptions())));
        var model = pipeline.Fit(train);
        var tuned = model.LastTransformer;
        Assert.HasCount(2, tuned.TrainingHistory);

        // The base under the adapters is 4-bit: every adapted linear layer wraps a QuantizedLinear.
        var adapted = tuned.Model.NamedModules().Select(m => m.Module).OfType<LoraLinear>().ToList();
        Assert.HasCount(5 * 7, adapted);
        Assert.IsTrue(tuned.Model.NamedModules().Count(m => m.Module is QuantizedLinear) == 35);

        var output = model.Transform(heldOut);
        Assert.AreEqual(TextDataViewType.Instance, output.Schema["Generated"].Type);
        var expected = Generated(ml, output);
        Assert.HasCount(5, expected);
        Assert.AreEqual(tuned.Generate(SentimentInstructions.Question, SentimentInstructions.Rows(1, skip: 400)[0].Input), expected[0]);

        string folder = Temp("causal");
        try
        {
            tuned.Save(folder);
            CollectionAssert.AreEquivalent(new[] { "adapter_config.json", "adapter_model.safetensors", "causal_lm.json" }, Directory.GetFiles(folder).Select(Path.GetFileName).ToArray());
            string manifest = File.ReadAllText(Path.Combine(folder, "causal_lm.json"));
            StringAssert.Contains(manifest, "\"Type\": \"nf4\"");
            StringAssert.Contains(manifest, "\"EndOfSequenceId\": 1");
            StringAssert.Contains(File.ReadAllText(Path.Combine(folder, "adapter_config.json")), "\"CAUSAL_LM\"");
            var loaded = CausalLmFineTuningTransformer.Load(folder);
            CollectionAssert.AreEqual(expected, Generated(ml, loaded.Transform(heldOut)));
            Assert.AreEqual(tuned.Evaluate(heldOut).Loss, loaded.Evaluate(heldOut).Loss);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void TrainingLowersTheResponseLoss_Fp32Lora_AndPredictionEngineAgrees()
    {
        var ml = new MLContext();
        var train = SentimentInstructions.View(ml, 64);
        var dev = SentimentInstructions.View(ml, 16, skip: 300);
        var options = Options(quantization: null);
        options.MaxEpochs = 3;
        var tuned = ml.Transforms.CausalLmFineTuning(options).Fit(train);

        // Before training the adapters are zero (LoRA B = 0), so the untouched base model gives the starting loss.
        var baseModel = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        var devSequences = SentimentInstructions.Rows(16, skip: 300).Select(e => tuned.Encoder.Encode(e, out _)!).ToList();
        double before = CausalLmLoss.Evaluate(baseModel, devSequences, 8, paddingId: 2).MeanNll;
        var after = tuned.Evaluate(dev);
        Assert.AreEqual(Math.Exp(after.Loss), after.Perplexity, 1e-12);
        Assert.AreEqual(devSequences.Sum(s => s.SupervisedTokens), (int)after.Tokens);
        Assert.IsLessThan(before - 1.0, after.Loss, $"dev loss per response token: {before:F3} before, {after.Loss:F3} after");
        Assert.IsLessThan(tuned.TrainingHistory[0].TrainLoss, tuned.TrainingHistory[^1].TrainLoss);

        var engine = ml.Model.CreatePredictionEngine<PromptRow, GeneratedRow>(tuned);
        var first = SentimentInstructions.Rows(1, skip: 300)[0];
        var predicted = engine.Predict(new PromptRow { Instruction = first.Instruction, Input = first.Input }).Generated;
        Assert.AreEqual(Generated(ml, tuned.Transform(dev))[0], predicted);
    }

    [TestMethod]
    public void KeepingProjectionOutputs_WithoutCheckpointing_IsRefusedAtFit()
    {
        var ml = new MLContext();
        var options = Options(new QuantizationOptions());
        options.CheckpointKeepsProjectionOutputs = true;
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Transforms.CausalLmFineTuning(options).Fit(SentimentInstructions.View(ml, 4)));
        StringAssert.Contains(e.Message, "CheckpointKeepsProjectionOutputs");
    }

    [TestMethod]
    public void Packing_WithEightBitAdamWStates_FollowsThe32BitRun()
    {
        // Rank 64 (QLoRA's default): every LoRA matrix of stories260K has ≥ 4,096 weights, so its moments are stored
        // in 8 bits. Checkpointing is on in the 8-bit run; it changes no gradient, only memory.
        var ml = new MLContext();
        var data = SentimentInstructions.View(ml, 24);
        var dev = SentimentInstructions.View(ml, 8, skip: 300);
        (CausalLmFineTuningTransformer Tuned, string? PackingLine) Fit(Microsoft.ML.Peft.Optim.AdamWStateStorage state, bool checkpointing)
        {
            string? packingLine = null;
            var options = Options(new QuantizationOptions());
            options.Packing = true;
            options.LoraRank = 64;
            options.OptimizerState = state;
            options.GradientCheckpointing = checkpointing;
            options.CheckpointKeepsProjectionOutputs = checkpointing;
            options.MaxEpochs = 1;
            options.Log = line => packingLine ??= line.StartsWith("packing:", StringComparison.Ordinal) ? line : null;
            return (ml.Transforms.CausalLmFineTuning(options).Fit(data), packingLine);
        }
        var (fp32, packingLine) = Fit(Microsoft.ML.Peft.Optim.AdamWStateStorage.Float32, checkpointing: false);
        Assert.IsNotNull(packingLine);
        StringAssert.StartsWith(packingLine, "packing: 24 sequences into ");
        int rows = int.Parse(packingLine.Split(' ')[4], System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsLessThan(24, rows, "two or more ~60-token sequences share a 128-token row");

        var (eightBit, _) = Fit(Microsoft.ML.Peft.Optim.AdamWStateStorage.EightBit, checkpointing: true);
        double before = CausalLmLoss.Evaluate(PretrainedModel.LoadForCausalLM(TestPaths.Stories260K),
            SentimentInstructions.Rows(8, skip: 300).Select(e => fp32.Encoder.Encode(e, out _)!).ToList(), 8, paddingId: 2).MeanNll;
        double after32 = fp32.Evaluate(dev).Loss, after8 = eightBit.Evaluate(dev).Loss;
        double train32 = fp32.TrainingHistory[0].TrainLoss, train8 = eightBit.TrainingHistory[0].TrainLoss;
        // Same batches, same first step (8-bit moments are quantized only after they are used); later steps read
        // moments rounded to the dynamic 8-bit map. The runs must land on nearly the same loss, far closer to each other
        // than to where they started.
        Assert.AreNotEqual(after32, after8, "8-bit states are in use");
        Assert.AreEqual(train32, train8, 0.02 * train32, $"mean training loss: 32-bit {train32:F4}, 8-bit {train8:F4}");
        Assert.AreEqual(after32, after8, 0.05 * Math.Abs(before - after32), $"dev loss: before {before:F4}, 32-bit {after32:F4}, 8-bit {after8:F4}");
    }

    [TestMethod]
    public void Defaults_AreQLoRAs()
    {
        var o = new CausalLmFineTuningEstimator.Options();
        Assert.IsNotNull(o.Quantization);
        Assert.AreEqual(Microsoft.ML.Peft.Quantization.FourBitType.NF4, o.Quantization.Type);
        Assert.AreEqual(64, o.Quantization.BlockSize);
        Assert.IsTrue(o.Quantization.DoubleQuant);
        Assert.AreEqual(64, o.LoraRank);
        Assert.AreEqual(16.0, o.LoraAlpha);
        Assert.AreEqual(0.05, o.LoraDropout);
        CollectionAssert.AreEqual(new[] { "all-linear" }, o.TargetModules.ToArray());
        Assert.AreSame(PromptTemplate.Alpaca, o.Template);
        Assert.IsFalse(o.Packing);
        Assert.IsFalse(o.EffectiveGeneration.DoSample);
        Assert.AreEqual(32, o.EffectiveGeneration.MaxNewTokens);
        Assert.IsNull(o.EffectiveGeneration.EosTokenIds, "null = the model config's eos_token_id");
        o.EndOfSequenceTokenId = 1;
        CollectionAssert.AreEqual(new[] { 1 }, o.EffectiveGeneration.EosTokenIds!.ToArray(), "generation stops where training responses end");
    }

    [TestMethod]
    public void BadColumnsAndOptions_FailBeforeLoading()
    {
        var ml = new MLContext();
        var data = SentimentInstructions.View(ml, 4);
        var answerOptions = Options(null);
        answerOptions.ResponseColumnName = "Answer";
        var noOutput = new CausalLmFineTuningEstimator(answerOptions);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => noOutput.Fit(data));
        StringAssert.Contains(e.Message, "'Answer'");
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => noOutput.GetOutputSchema(Microsoft.ML.Peft.Tests.MLNet.PipelineTests.SchemaShapeOf(ml, data)));
        StringAssert.Contains(e.Message, "'Answer'");

        var numeric = ml.Data.LoadFromEnumerable(new[] { new NumericRow() });
        e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new CausalLmFineTuningEstimator(Options(null)).Fit(numeric));
        StringAssert.Contains(e.Message, "'Instruction'");
        StringAssert.Contains(e.Message, "must be Text");

        var noBase = Options(null);
        noBase.BaseModel = null;
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => new CausalLmFineTuningEstimator(noBase).Fit(data)).Message, "BaseModel");
    }

    private sealed class GeneratedRow
    {
        public string Generated { get; set; } = "";
    }

    private sealed class PromptRow
    {
        public string Instruction { get; set; } = "";

        public string Input { get; set; } = "";
    }

    private sealed class NumericRow
    {
        public float Instruction { get; set; }

        public string Input { get; set; } = "";

        public string Output { get; set; } = "";
    }
}
