using Microsoft.ML.Peft.GaLore;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Selective;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.MLNet;
using Microsoft.ML.Peft.Tests.Training;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.GaLore;

/// <summary>GaLore as the trainers' optimizer option (<see cref="TextClassificationTrainerOptions.GaLore"/>).</summary>
[TestClass]
public sealed class GaLoreTrainerTests
{
    private static Dictionary<string, float[]> FullFineTune(GaLoreOptions? galore)
    {
        var ml = new MLContext();
        var data = Sst2.Load(ml, Sst2.Train, 64);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var options = new PeftTextClassificationTrainer.Options
        {
            BaseModel = TestPaths.Stories260K, PeftConfig = SelectiveConfig.Full(), MaxEpochs = 1, BatchSize = 16, LearningRate = 2e-3,
            MaxSequenceLength = 24, Seed = 3, ScoringBatchSize = 16, WarmupRatio = 0, GaLore = galore,
        };
        var transformer = ml.MulticlassClassification.Trainers.PeftTextClassification(options).Fit(keyed);
        return transformer.Scorer.Backend.Module.NamedParameters().Where(p => p.Parameter.RequiresGrad)
            .ToDictionary(p => p.Name, p => p.Parameter.ToArray(), StringComparer.Ordinal);
    }

    /// <summary>
    /// Full fine-tuning of stories260K for four steps (no warm-up, so every step moves the weights): GaLore with a rank
    /// above every weight's short side and scale 1, refreshed every step, ends bit for bit where AdamW does (same groups,
    /// decay rule and clipping); rank 2 ends elsewhere.
    /// </summary>
    [TestMethod]
    public void FullRankScaleOne_IsPlainFullFineTuningBitForBit_LowRankIsNot()
    {
        var adam = FullFineTune(null);
        var full = FullFineTune(new GaLoreOptions { Rank = 4096, Scale = 1, UpdateProjectionGap = 1 });
        CollectionAssert.AreEquivalent(adam.Keys.ToArray(), full.Keys.ToArray());
        foreach (var (name, values) in adam) CollectionAssert.AreEqual(values, full[name], name);

        var low = FullFineTune(new GaLoreOptions { Rank = 2, Scale = 1 });
        Assert.IsFalse(adam["model.layers.0.self_attn.q_proj.weight"].SequenceEqual(low["model.layers.0.self_attn.q_proj.weight"]), "projected weight");
    }

    /// <summary>
    /// The training loop with GaLore (rank 2 &lt; 3 rows of the head, refresh every 4 steps, scale 0.25, clipping 1.0,
    /// warm-up then linear decay) equals GaLoreAdamW driven by hand over the same batches, bit for bit.
    /// </summary>
    [TestMethod]
    public void Loop_EqualsGaLoreAdamWDrivenByHand()
    {
        const int Vocab = 60, Dim = 32, Classes = 3;
        var train = TinyClassifier.ToyData(96, Classes, Vocab, seed: 11);
        var galore = new GaLoreOptions { Rank = 2, UpdateProjectionGap = 4, Scale = 0.25 };
        var settings = new TrainingSettings
        {
            Epochs = 2, BatchSize = 16, LearningRate = 0.05, WarmupRatio = 0.25, WeightDecay = 0.01, Seed = 7, MaxGradNorm = 1.0, GaLore = galore,
        };
        var looped = new TinyClassifier(Vocab, Dim, Classes, seed: 3);
        new TrainingLoop(looped, settings, paddingId: 0).Run(train, null);

        var model = new TinyClassifier(Vocab, Dim, Classes, seed: 3);
        var weight = model.NamedParameters().Single(p => p.Name == "score.weight").Parameter;
        var bias = model.NamedParameters().Single(p => p.Name == "score.bias").Parameter;
        var optimizer = new GaLoreAdamW([new ParameterGroup([weight]), new ParameterGroup([bias], weightDecay: 0)], [weight], galore, 0.05, weightDecay: 0.01);
        int steps = 2 * 6;
        var scheduler = new LearningRateScheduler(optimizer, new LinearWarmupSchedule(3, steps));
        var lengths = train.Select(e => e.Length).ToArray();
        for (int epoch = 0; epoch < 2; epoch++)
        {
            foreach (var rows in BatchPlanner.Plan(lengths, 16, BatchOrder.Shuffled, 7, epoch))
            {
                var batch = TokenBatch.Collate(train, rows, 0);
                var labels = rows.Select(r => train[r].Label).ToArray();
                model.Forward(batch).CrossEntropy(Tensor.FromInt32(labels, labels.Length)).Backward();
                GradientClipping.ClipGradNorm([weight, bias], 1.0);
                optimizer.Step();
                scheduler.Step();
                optimizer.ZeroGrad();
            }
        }
        Assert.IsFalse(optimizer.ProjectorOf(weight)!.IsIdentity, "rank 2 projects the 3×32 head");
        var expected = model.TrainableValues();
        foreach (var (name, values) in looped.TrainableValues()) CollectionAssert.AreEqual(expected[name], values, name);
    }

    [TestMethod]
    public void GaLoreWithCheckpoints_IsRejectedNamingBoth()
    {
        var settings = new TrainingSettings { GaLore = new GaLoreOptions(), CheckpointFolder = "x" };
        var ex = Assert.ThrowsExactly<ArgumentException>(settings.Validate);
        StringAssert.Contains(ex.Message, "CheckpointFolder");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(new TrainingSettings { GaLore = new GaLoreOptions { Rank = 0 } }.Validate);
    }
}
