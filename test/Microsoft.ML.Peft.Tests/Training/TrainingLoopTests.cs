using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Training;

[TestClass]
public sealed class TrainingLoopTests
{
    private const int Vocab = 60, Dim = 32, Classes = 3;
    private static readonly List<ClassificationExample> Train = TinyClassifier.ToyData(240, Classes, Vocab, seed: 11);
    private static readonly List<ClassificationExample> Validation = TinyClassifier.ToyData(60, Classes, Vocab, seed: 12);

    public TestContext TestContext { get; set; } = null!;

    private static TrainingSettings Settings => new()
    {
        Epochs = 3, BatchSize = 16, LearningRate = 0.05, WarmupRatio = 0.1, WeightDecay = 0.01, Seed = 7, BatchOrder = BatchOrder.LengthGrouped,
    };

    private string TempFolder()
    {
        string path = Path.Combine(Path.GetTempPath(), "peft-loop-" + Guid.NewGuid().ToString("N"));
        TestContext.CancellationToken.Register(() => { });
        return path;
    }

    private static (TinyClassifier Model, TrainerState State) Run(TrainingSettings settings, IProgress<TrainingProgress>? progress = null,
        List<ClassificationExample>? validation = null, TinyClassifier? model = null)
    {
        model ??= new TinyClassifier(Vocab, Dim, Classes, seed: 3);
        var state = new TrainingLoop(model, settings, paddingId: 0, progress).Run(Train, validation);
        return (model, state);
    }

    private static void AssertSameWeights(TinyClassifier expected, TinyClassifier actual)
    {
        var a = expected.TrainableValues();
        var b = actual.TrainableValues();
        CollectionAssert.AreEquivalent(a.Keys.ToArray(), b.Keys.ToArray());
        foreach (var (name, values) in a) CollectionAssert.AreEqual(values, b[name], $"parameter {name} differs");
    }

    [TestMethod]
    public void LearnsSeparableTask_AndReportsHistory()
    {
        var (model, state) = Run(Settings, validation: Validation);
        Assert.AreEqual(3, state.History.Count);
        Assert.AreEqual(3 * 15, state.GlobalStep);   // 240 rows / 16 = 15 steps per epoch
        Assert.IsTrue(state.History[2].TrainLoss < state.History[0].TrainLoss, $"train loss {state.History[0].TrainLoss} -> {state.History[2].TrainLoss}");
        Assert.IsTrue(state.History[2].ValidationAccuracy > 0.9, $"validation accuracy {state.History[2].ValidationAccuracy}");
        var (loss, accuracy) = ClassifierInference.Evaluate(model, Validation, 0, 7);
        Assert.AreEqual(state.History[2].ValidationLoss!.Value, loss, 1e-6, "the scoring batch size changes float rounding only");
        Assert.AreEqual(state.History[2].ValidationAccuracy!.Value, accuracy);
    }

    [TestMethod]
    public void SameSeed_GivesBitIdenticalWeights_OtherSeedDoesNot()
    {
        var (a, _) = Run(Settings);
        var (b, _) = Run(Settings);
        AssertSameWeights(a, b);
        var (c, _) = Run(Settings with { Seed = 8 });
        CollectionAssert.AreNotEqual(a.TrainableValues()["score.weight"], c.TrainableValues()["score.weight"]);
    }

    [TestMethod]
    public void ResumeAfterKill_EndsBitIdenticalToUninterruptedRun()
    {
        var settings = Settings with { GradientAccumulationSteps = 2, CheckpointEverySteps = 3 };
        var (uninterrupted, fullState) = Run(settings, validation: Validation);

        string folder = TempFolder();
        try
        {
            var withCheckpoints = settings with { CheckpointFolder = folder };
            var killAt = new SyncProgress<TrainingProgress>(p =>
            {
                if (p.Phase == TrainingPhase.Step && p.Step == 13) throw new OperationCanceledException("simulated kill");
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => Run(withCheckpoints, killAt, Validation));
            Assert.IsTrue(Directory.Exists(Path.Combine(folder, "checkpoint-00000012")), "the checkpoint before the kill exists");

            var events = new List<TrainingProgress>();
            var (resumed, state) = Run(withCheckpoints, new SyncProgress<TrainingProgress>(events.Add), Validation);
            var first = events.First();
            Assert.AreEqual(TrainingPhase.Resumed, first.Phase);
            Assert.AreEqual(12, first.Step);
            Assert.AreEqual(13, events.First(e => e.Phase == TrainingPhase.Step).Step);
            AssertSameWeights(uninterrupted, resumed);
            Assert.AreEqual(fullState.GlobalStep, state.GlobalStep);
            CollectionAssert.AreEqual(fullState.History.Select(h => h.TrainLoss).ToArray(), state.History.Select(h => h.TrainLoss).ToArray());
            CollectionAssert.AreEqual(fullState.History.Select(h => h.ValidationLoss).ToArray(), state.History.Select(h => h.ValidationLoss).ToArray());

            // One complete checkpoint is kept; no temporary folders are left behind.
            Assert.AreEqual(1, Directory.GetDirectories(folder).Length, string.Join(", ", Directory.GetDirectories(folder)));

            // A resumed run with other settings is refused.
            var other = Assert.ThrowsExactly<InvalidOperationException>(() => Run(withCheckpoints with { LearningRate = 0.01 }));
            StringAssert.Contains(other.Message, "different run");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void TornOrTemporaryCheckpointFolders_AreIgnored()
    {
        string folder = TempFolder();
        try
        {
            var settings = Settings with { Epochs = 1, CheckpointFolder = folder, CheckpointEverySteps = 5 };
            var kill = new SyncProgress<TrainingProgress>(p =>
            {
                if (p.Phase == TrainingPhase.Step && p.Step == 7) throw new OperationCanceledException();
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => Run(settings, kill));
            Directory.CreateDirectory(Path.Combine(folder, "checkpoint-00000099"));            // torn: no files
            Directory.CreateDirectory(Path.Combine(folder, ".checkpoint-00000010.abc.tmp"));   // unfinished write
            File.WriteAllText(Path.Combine(folder, ".checkpoint-00000010.abc.tmp", "trainer_state.json"), "{");
            var events = new List<TrainingProgress>();
            var (resumed, _) = Run(settings, new SyncProgress<TrainingProgress>(events.Add));
            Assert.AreEqual(5, events.First(e => e.Phase == TrainingPhase.Resumed).Step);
            var (reference, _) = Run(settings with { CheckpointFolder = null });
            AssertSameWeights(reference, resumed);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void NonFiniteLoss_StopsWithClearError_KeepingLastCheckpoint()
    {
        string folder = TempFolder();
        try
        {
            var model = new TinyClassifier(Vocab, Dim, Classes, seed: 3) { PoisonForward = 5 };
            var settings = Settings with { CheckpointFolder = folder, CheckpointEverySteps = 2 };
            var error = Assert.ThrowsExactly<TrainingDivergedException>(() => Run(settings, model: model));
            Assert.AreEqual(5, error.Step);
            Assert.IsNotNull(error.LastCheckpoint);
            Assert.AreEqual("checkpoint-00000004", Path.GetFileName(error.LastCheckpoint));
            StringAssert.Contains(error.Message, "step 5");
            StringAssert.Contains(error.Message, "NaN");
            StringAssert.Contains(error.Message, error.LastCheckpoint);
            Assert.IsTrue(model.TrainableValues().Values.All(v => v.All(float.IsFinite)), "no NaN reached the weights");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void GradientAccumulation_EqualsOneLargeBatch()
    {
        // Shuffled batches of 4 taken two at a time cover exactly the rows of the batches of 8 (same permutation).
        var small = Settings with { BatchOrder = BatchOrder.Shuffled, BatchSize = 4, GradientAccumulationSteps = 2, Epochs = 1 };
        var large = small with { BatchSize = 8, GradientAccumulationSteps = 1 };
        var (a, sa) = Run(small);
        var (b, sb) = Run(large);
        Assert.AreEqual(sb.GlobalStep, sa.GlobalStep);
        foreach (var (name, values) in b.TrainableValues())
        {
            var other = a.TrainableValues()[name];
            for (int i = 0; i < values.Length; i++) Assert.AreEqual(values[i], other[i], 2e-5, $"{name}[{i}]");
        }
    }

    [TestMethod]
    public void LearningRate_FollowsLinearWarmupThenDecay()
    {
        // 10 steps (160 rows / 16), warm-up ceil(0.25 · 10) = 3: factors 0, 1/3, 2/3, then (10 − k)/7.
        var rates = new List<double>();
        var settings = Settings with { Epochs = 1, WarmupRatio = 0.25, LearningRate = 0.3 };
        var model = new TinyClassifier(Vocab, Dim, Classes, seed: 3);
        new TrainingLoop(model, settings, 0, new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase == TrainingPhase.Step) rates.Add(p.LearningRate);
        })).Run(Train.Take(160).ToList(), null);
        double[] factors = [0, 1.0 / 3, 2.0 / 3, 1, 6.0 / 7, 5.0 / 7, 4.0 / 7, 3.0 / 7, 2.0 / 7, 1.0 / 7];
        Assert.AreEqual(factors.Length, rates.Count);
        for (int i = 0; i < factors.Length; i++) Assert.AreEqual(0.3 * factors[i], rates[i], 1e-15, $"step {i + 1}");
    }

    [TestMethod]
    public void EarlyStopping_StopsAndRestoresBestEpochWeights()
    {
        // Validation labels are rotated, so the better the model fits the training labels the worse validation gets.
        var adversarial = Validation.Select(e => e with { Label = (e.Label + 1) % Classes }).ToList();
        Dictionary<string, float[]>? atFirstEpoch = null;
        TinyClassifier model = new(Vocab, Dim, Classes, seed: 3);
        var settings = Settings with { Epochs = 6, EarlyStoppingPatience = 2 };
        var state = new TrainingLoop(model, settings, 0, new SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase == TrainingPhase.Validation && p.Epoch == 0) atFirstEpoch = model.TrainableValues();
        })).Run(Train, adversarial);
        Assert.IsTrue(state.Stopped);
        Assert.AreEqual(3, state.History.Count, "epoch 0 best, epochs 1 and 2 worse: stop after 3");
        Assert.AreEqual(0, state.BestEpoch);
        foreach (var (name, values) in atFirstEpoch!) CollectionAssert.AreEqual(values, model.TrainableValues()[name], name);
    }

    [TestMethod]
    public void BadInput_FailsBeforeTraining()
    {
        var model = new TinyClassifier(Vocab, Dim, Classes, seed: 3);
        var loop = new TrainingLoop(model, Settings, 0);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => loop.Run([], null)).Message, "no rows");
        var badLabel = new List<ClassificationExample> { new([1, 2], null, 3) };
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => loop.Run(badLabel, null)).Message, "class 3");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new TrainingLoop(model, Settings with { BatchSize = 0 }, 0).Run(Train, null));
        Assert.ThrowsExactly<ArgumentException>(() => new TrainingLoop(model, Settings with { EarlyStoppingPatience = 1 }, 0).Run(Train, null));
        Assert.AreEqual(0, model.Forwards);
    }
}
