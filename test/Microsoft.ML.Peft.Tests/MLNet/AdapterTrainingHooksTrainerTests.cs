using Microsoft.ML.Peft.AdaLora;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// The training-time methods (AdaLoRA's rank allocation and regulariser, LoRA+'s parameter groups) through
/// <see cref="PeftTextClassificationTrainer"/> on stories260K: the trainer's loop must run the method's hooks.
/// </summary>
[TestClass]
public sealed class AdapterTrainingHooksTrainerTests
{
    private static PeftTextClassificationTrainer.Options Options(PeftConfig config, int epochs, int batchSize) => new()
    {
        BaseModel = TestPaths.Stories260K, PeftConfig = config, MaxEpochs = epochs, BatchSize = batchSize, LearningRate = 1e-3,
        MaxSequenceLength = 24, Seed = 11, ScoringBatchSize = 16,
    };

    private static LoraConfig Lora() => new()
    {
        Rank = 4, Alpha = 8, TargetModules = ModuleSelector.FromNames(["q_proj", "v_proj"]), InitLoraWeights = LoraInit.Random,
    };

    /// <summary>Fits on the first <paramref name="rows"/> SST-2 rows; returns the backend the trainer trained.</summary>
    private static (PeftTextClassifier Backend, Dictionary<string, float[]> Initial) Fit(PeftTextClassificationTrainer.Options options, int rows)
    {
        var ml = new MLContext();
        var data = Sst2.Load(ml, Sst2.Train, rows);
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(data).Transform(data);
        var factory = new SnapshotFactory();
        new PeftTextClassificationTrainer(options, ClassificationKind.Multiclass, factory).Fit(keyed);
        return (factory.Backend!, factory.Initial!);
    }

    private static Dictionary<string, float[]> Trainable(PeftTextClassifier backend) =>
        backend.Module.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToDictionary(p => p.Name, p => p.Parameter.ToArray(), StringComparer.Ordinal);

    [TestMethod]
    public void AdaLora_ThroughTheTrainer_PrunesToTargetRTimesLayers_AndItsRegulariserReachesTheGradients()
    {
        // 64 rows / 16 per batch × 2 epochs = 8 steps; total_step left unset so the trainer supplies it. PEFT masks to
        // the final budget at step total_step − t_final = 6 and keeps that pattern through step 7.
        AdaLoraConfig Config(double orthRegWeight) => new()
        {
            TargetModules = new[] { "q_proj", "v_proj" }, InitR = 4, TargetR = 2, TInit = 1, TFinal = 2, DeltaT = 1, Alpha = 4,
            OrthRegWeight = orthRegWeight,
        };
        var (backend, _) = Fit(Options(Config(0.5), epochs: 2, batchSize: 16), 64);
        var layers = backend.Peft.TunerLayers().Select(t => (AdaLoraLinear)t.Layer).ToList();
        Assert.AreEqual(10, layers.Count, "q_proj and v_proj of stories260K's 5 layers");
        int kept = layers.Sum(l => l.LoraE("default").ToArray().Count(v => v != 0));
        Assert.AreEqual(2 * 10, kept, "non-zero singular values = target_r × adapted layers (init_r × layers = 40 before pruning)");

        // With another orthogonality weight (PEFT refuses 0) the same run ends elsewhere: the regulariser is in the loss.
        var (plain, _) = Fit(Options(Config(0.1), epochs: 2, batchSize: 16), 64);
        var withReg = Trainable(backend);
        var withoutReg = Trainable(plain);
        string a = withReg.Keys.First(k => k.Contains("lora_A", StringComparison.Ordinal));
        CollectionAssert.AreNotEqual(withReg[a], withoutReg[a], $"{a} must depend on orth_reg_weight");
    }

    [TestMethod]
    public void LoraPlus_ThroughTheTrainer_OneAdamStep_MovesBByRatioTimesLr_AndEverythingElseByLr()
    {
        const double lr = 1e-3, ratio = 16;
        PeftTextClassificationTrainer.Options OneStep(double? loraPlus)
        {
            var options = Options(Lora(), epochs: 1, batchSize: 16);
            options.WarmupRatio = 0;
            options.MaxGradientNorm = null;
            options.WeightDecay = 0;
            options.LoraPlusLearningRateRatio = loraPlus;
            return options;
        }

        var (plusBackend, initial) = Fit(OneStep(ratio), 16);
        var (plainBackend, plainInitial) = Fit(OneStep(null), 16);
        var plus = Trainable(plusBackend);
        var plain = Trainable(plainBackend);
        int bEntries = 0, signLike = 0, entries = 0;
        foreach (var (name, p0) in initial)
        {
            CollectionAssert.AreEqual(p0, plainInitial[name], $"{name}: same seed, same initialisation");
            bool isB = name.Contains("lora_B", StringComparison.Ordinal);
            double scale = isB ? ratio : 1;
            for (int i = 0; i < p0.Length; i++)
            {
                double dPlus = (double)plus[name][i] - p0[i], dPlain = (double)plain[name][i] - p0[i];
                // Each stored weight is p0 − update rounded to float: within one float ulp (m·2⁻²³) of the exact value.
                double ulp = Math.Max(Math.Abs(p0[i]), Math.Max(Math.Abs(plus[name][i]), Math.Abs(plain[name][i]))) * Math.Pow(2, -23) + float.Epsilon;
                // Adam's first step moves by lr·g/(|g| + eps): at most lr, lr·sign(g) where |g| ≫ eps.
                Assert.IsTrue(Math.Abs(dPlain) <= lr * (1 + 2e-7) + ulp, $"{name}[{i}] moved {dPlain} > lr");
                Assert.IsTrue(Math.Abs(dPlus) <= scale * lr * (1 + 2e-7) + ulp, $"{name}[{i}] moved {dPlus} > {scale}·lr");
                Assert.AreEqual(scale * dPlain, dPlus, scale * lr * 2e-7 + (scale + 1) * ulp, $"{name}[{i}]: LoRA+ step = {scale} × plain step");
                if (!isB) Assert.AreEqual(plain[name][i], plus[name][i], $"{name}[{i}] is not a B matrix: same lr, same step bit for bit");
                entries++;
                if (isB) bEntries++;
                if (Math.Abs(dPlain) >= lr * 0.999) signLike++;
            }
        }
        Assert.AreEqual(5 * (64 * 4 + 32 * 4), bEntries, "lora_B of q_proj (64×4) and v_proj (32×4) in 5 layers");
        Assert.IsTrue(signLike >= entries * 0.9, $"only {signLike} of {entries} entries moved by ≈ lr: the first Adam step should be lr·sign(g)");
    }

    [TestMethod]
    public void LoraPlus_ResumeAfterKill_BitIdenticalToUninterrupted()
    {
        string folder = Path.Combine(Path.GetTempPath(), $"peft-loraplus-resume-{Guid.NewGuid():N}");
        try
        {
            PeftTextClassificationTrainer.Options Run(string? checkpoints)
            {
                var config = Lora();
                config.Dropout = 0.1;
                var options = Options(config, epochs: 1, batchSize: 8);
                options.LoraPlusLearningRateRatio = 16;
                options.CheckpointFolder = checkpoints;
                options.CheckpointEverySteps = 2;
                return options;
            }

            var reference = Trainable(Fit(Run(null), 48).Backend);
            var killed = Run(folder);
            killed.Progress = new Training.SyncProgress<TrainingProgress>(p =>
            {
                if (p.Phase == TrainingPhase.Step && p.Step == 3) throw new OperationCanceledException("simulated kill");
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => Fit(killed, 48));
            var resumedOptions = Run(folder);
            var events = new List<TrainingProgress>();
            resumedOptions.Progress = new Training.SyncProgress<TrainingProgress>(events.Add);
            var resumed = Trainable(Fit(resumedOptions, 48).Backend);
            Assert.AreEqual(2, events.First(e => e.Phase == TrainingPhase.Resumed).Step);
            Assert.AreEqual(6, events.Last(e => e.Phase == TrainingPhase.Step).Step);
            foreach (var (name, values) in reference) CollectionAssert.AreEqual(values, resumed[name], $"{name}: LoRA+ groups, weights and Adam state continue exactly");
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    [TestMethod]
    public void LoraPlusRatio_NotPositive_IsRejectedBeforeLoadingTheModel()
    {
        var options = Options(Lora(), epochs: 1, batchSize: 16);
        options.LoraPlusLearningRateRatio = 0;
        var ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Fit(options, 16));
        StringAssert.Contains(ex.Message, "LoraPlusLearningRateRatio");
    }

    /// <summary>The production factory, keeping the backend it built and its trainable weights before training.</summary>
    private sealed class SnapshotFactory : ITextClassifierFactory
    {
        public PeftTextClassifier? Backend { get; private set; }

        public Dictionary<string, float[]>? Initial { get; private set; }

        public ITextClassifierBackend Create(TextClassificationTrainerOptions options, int numLabels)
        {
            Backend = (PeftTextClassifier)PeftTextClassifierFactory.Instance.Create(options, numLabels);
            Initial = Trainable(Backend);
            return Backend;
        }

        public ITextClassifierBackend Load(BaseModelReference baseModel, string adapterFolder, int numLabels, Action<string>? log) =>
            PeftTextClassifierFactory.Instance.Load(baseModel, adapterFolder, numLabels, log);
    }
}
