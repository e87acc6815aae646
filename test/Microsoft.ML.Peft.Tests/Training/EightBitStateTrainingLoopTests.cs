using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Training;

/// <summary>
/// <see cref="TrainingSettings.OptimizerState"/> in the classification loop: 8-bit AdamW states follow the 32-bit
/// trajectory within the quantization error of the stored moments, paged states equal in-memory ones bit for bit, and
/// a killed 8-bit run resumes exactly. The head has 1,400 × 3 = 4,200 weights, above bitsandbytes' min_8bit_size of
/// 4,096, so its moments really are stored in 8 bits (the 3-element bias keeps float32 states).
/// </summary>
[TestClass]
public sealed class EightBitStateTrainingLoopTests
{
    private const int Vocab = 60, Dim = 1400, Classes = 3;
    private static readonly List<ClassificationExample> Train = TinyClassifier.ToyData(96, Classes, Vocab, seed: 11);

    private static TrainingSettings Settings(AdamWStateStorage storage) => new()
    {
        Epochs = 1, BatchSize = 16, LearningRate = 0.01, WarmupRatio = 0, WeightDecay = 0.01, Seed = 7, OptimizerState = storage,
    };

    private static (Dictionary<string, float[]> Weights, TrainerState State) Run(TrainingSettings settings, IProgress<TrainingProgress>? progress = null)
    {
        var model = new TinyClassifier(Vocab, Dim, Classes, seed: 3);
        var state = new TrainingLoop(model, settings, paddingId: 0, progress).Run(Train, null);
        return (model.TrainableValues(), state);
    }

    [TestMethod]
    public void EightBitStates_FollowThe32BitTrajectory_WithinTheQuantizationError()
    {
        var initial = new TinyClassifier(Vocab, Dim, Classes, seed: 3).TrainableValues()["score.weight"];
        var (fp32, _) = Run(Settings(AdamWStateStorage.Float32));
        var (eightBit, state) = Run(Settings(AdamWStateStorage.EightBit));
        Assert.AreEqual(6, state.GlobalStep);
        var w32 = fp32["score.weight"];
        var w8 = eightBit["score.weight"];
        double moved = 0, differ = 0;
        for (int i = 0; i < w32.Length; i++)
        {
            moved = Math.Max(moved, Math.Abs(w32[i] - initial[i]));
            differ = Math.Max(differ, Math.Abs(w8[i] - w32[i]));
        }
        // Step 1 updates from exact moments (AdamW8Bit quantizes them only after using them); each later step reads
        // moments rounded by the dynamic 8-bit map, whose relative step is at most a few per cent near a block's absmax.
        // Six steps of at most lr each: the 8-bit weights stay within a few per cent of the distance travelled.
        Assert.IsGreaterThan(0.0, differ, "the 8-bit states must be in use (else the runs would be identical)");
        Assert.IsLessThan(0.05 * moved, differ, $"8-bit vs 32-bit: max |Δw| {differ:G3}, weights moved up to {moved:G3}");
    }

    [TestMethod]
    public void PagedStates_EqualInMemoryStates()
    {
        var (inMemory, _) = Run(Settings(AdamWStateStorage.EightBit));
        var (paged, _) = Run(Settings(AdamWStateStorage.PagedEightBit));
        foreach (var (name, values) in inMemory) CollectionAssert.AreEqual(values, paged[name], name);
        var (fp32, _) = Run(Settings(AdamWStateStorage.Float32));
        var (pagedFp32, _) = Run(Settings(AdamWStateStorage.PagedFloat32));
        foreach (var (name, values) in fp32) CollectionAssert.AreEqual(values, pagedFp32[name], name);
    }

    [TestMethod]
    public void EightBitRun_ResumedAfterKill_EndsBitIdenticalToUninterruptedRun()
    {
        var settings = Settings(AdamWStateStorage.EightBit) with { Epochs = 2, CheckpointEverySteps = 2 };
        var (uninterrupted, fullState) = Run(settings);
        string folder = Path.Combine(Path.GetTempPath(), "peft-8bit-loop-" + Guid.NewGuid().ToString("N"));
        try
        {
            var withCheckpoints = settings with { CheckpointFolder = folder };
            var killAt = new SyncProgress<TrainingProgress>(p =>
            {
                if (p.Phase == TrainingPhase.Step && p.Step == 9) throw new OperationCanceledException("simulated kill");
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => Run(withCheckpoints, killAt));
            var (resumed, state) = Run(withCheckpoints);
            Assert.AreEqual(fullState.GlobalStep, state.GlobalStep);
            foreach (var (name, values) in uninterrupted) CollectionAssert.AreEqual(values, resumed[name], name);

            // The checkpoint belongs to an 8-bit run: a 32-bit run with otherwise equal settings does not resume it.
            var other = Assert.ThrowsExactly<InvalidOperationException>(() => Run(withCheckpoints with { OptimizerState = AdamWStateStorage.Float32 }));
            StringAssert.Contains(other.Message, "different run");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
