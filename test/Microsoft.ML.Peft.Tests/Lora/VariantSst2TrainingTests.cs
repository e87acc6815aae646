using Microsoft.ML.Peft.AdaLora;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Lycoris;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Training;
using Microsoft.ML.Peft.Tuners;
using Microsoft.ML.Peft.Vera;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>
/// Each LoRA variant, injected into stories260K as a sequence classifier through <see cref="PeftModel.Inject"/> and
/// trained through <see cref="AdapterTrainingHooks"/> (the path the trainers use), lowers the loss on a 16-sentence
/// SST-2 batch. No task_type, so the randomly initialised score head stays frozen: only the method's own parameters
/// can lower the loss.
/// </summary>
[TestClass]
public sealed class VariantSst2TrainingTests
{
    private const int Steps = 12;

    private static readonly string[] Targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    [TestMethod]
    public void Dora_LowersTheLoss() => AssertLearns("DoRA", new LoraConfig { TargetModules = Targets, Rank = 4, Alpha = 8, UseDora = true }, 2e-2);

    [TestMethod]
    public void LoraPlus_LowersTheLoss() => AssertLearns("LoRA+", new LoraConfig { TargetModules = Targets, Rank = 4, Alpha = 8 }, 2e-3, loraPlusRatio: 16);

    [TestMethod]
    public void MoSLora_LowersTheLoss() => AssertLearns("MoSLoRA", new LoraConfig { TargetModules = Targets, Rank = 4, Alpha = 8, UseMixer = true }, 2e-2);

    [TestMethod]
    public void Vera_LowersTheLoss() => AssertLearns("VeRA", new VeraConfig { TargetModules = Targets, Rank = 32 }, 5e-2);

    [TestMethod]
    public void AdaLora_LowersTheLoss_WhilePruning() =>
        AssertLearns("AdaLoRA", new AdaLoraConfig { TargetModules = Targets, InitR = 6, TargetR = 3, TInit = 2, TFinal = 2, DeltaT = 1, Alpha = 8 }, 2e-2);

    [TestMethod]
    public void Olora_LowersTheLoss() =>
        AssertLearns("OLoRA", new LoraConfig { TargetModules = Targets, Rank = 4, Alpha = 8, InitLoraWeights = LoraInit.Olora }, 2e-3);

    [TestMethod]
    public void LoHa_LowersTheLoss() => AssertLearns("LoHa", new LoHaConfig { TargetModules = ModuleSelector.FromNames(Targets), Rank = 4, Alpha = 8 }, 2e-2);

    [TestMethod]
    public void LoKr_LowersTheLoss() => AssertLearns("LoKr", new LoKrConfig { TargetModules = ModuleSelector.FromNames(Targets), Rank = 4, Alpha = 8 }, 2e-2);

    private static void AssertLearns(string method, PeftConfig config, double learningRate, double? loraPlusRatio = null)
    {
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Stories260K, 2, new ModelLoadOptions { Seed = 3 });
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        int padding = model.Config.PadTokenId ?? tokenizer.PaddingTokenId ?? tokenizer.UnknownTokenId ?? tokenizer.EndOfSentenceTokenId ?? 0;
        var lines = File.ReadLines(Path.Combine(TestPaths.Data, "sst2", "train.tsv")).Skip(1).Take(16).Select(l => l.Split('\t')).ToList();
        var batch = TokenBatch.Collate(lines.Select(l => tokenizer.EncodeToIds(l[0]).ToArray()).ToList(), null, padding);
        var labels = Tensor.FromInt32(lines.Select(l => int.Parse(l[1], System.Globalization.CultureInfo.InvariantCulture)).ToArray(), lines.Count);
        float TaskLoss()
        {
            using var scope = TensorScope.Begin();
            return model.Forward(batch.InputIds, batch.AttentionMask, null, batch.BatchSize, batch.SequenceLength).CrossEntropy(labels).Item();
        }

        model.Eval();
        float baseLoss = TaskLoss();
        var peft = PeftModel.Inject(model, config, generator: new Generator(11));
        var hooks = AdapterTrainingHooks.Create(peft, Steps, loraPlusRatio);
        var optimizer = new AdamW(hooks.ParameterGroups(peft), learningRate: learningRate, weightDecay: 0);
        model.Eval(); // no base dropout: the loss curve depends on the adapter only

        // Every variant starts as the identity (PEFT zero-initialises B, λ_b, E, hada_w2_b or lokr_w2; DoRA's magnitude
        // is ‖W‖; OLoRA subtracts its start from W), so the loss before training is the bare model's, computed above
        // without any adapter in the graph. float rounding only (OLoRA's residual W − sBA re-rounds the base weight).
        float first = TaskLoss();
        Assert.AreEqual(baseLoss, first, 1e-5 * (1 + baseLoss), $"{method}: the injected adapter is not the identity at init");
        for (int step = 0; step < Steps; step++)
        {
            using (TensorScope.Begin())
            {
                var loss = model.Forward(batch.InputIds, batch.AttentionMask, null, batch.BatchSize, batch.SequenceLength).CrossEntropy(labels);
                if (hooks.ExtraLoss(peft) is { } extra) loss = loss.Add(extra);
                loss.Backward();
                optimizer.Step();
                hooks.AfterOptimizerStep(peft, step);
                optimizer.ZeroGrad();
            }
        }
        float last = TaskLoss();
        Console.WriteLine($"{method}: task loss {first} → {last} in {Steps} steps");
        Assert.IsTrue(last < first - 0.02, $"{method}: task loss {first} → {last}");
        if (config is AdaLoraConfig)
        {
            int kept = peft.TunerLayers().Sum(t => ((AdaLoraLinear)t.Layer).LoraE("default").ToArray().Count(v => v != 0));
            Assert.AreEqual(3 * peft.TunerLayers().Count(), kept, "target_r per layer on average at the end");
        }
    }
}
