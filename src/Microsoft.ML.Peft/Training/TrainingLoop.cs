using System.Diagnostics;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Training;

/// <summary>
/// Fine-tunes the trainable parameters of a sequence classifier with mean cross-entropy: epochs of seeded batches,
/// gradient accumulation, AdamW (decay on matrices only), linear warm-up then linear decay, global-norm clipping,
/// validation and early stopping each epoch, and resumable checkpoints. When the model carries a PEFT adapter, the
/// method's training hooks (<see cref="AdapterTrainingHooks"/>) are wired in: their parameter groups (LoRA+), their
/// extra loss once per optimizer step (AdaLoRA's orthogonality regulariser) and their callback after every optimizer step
/// (AdaLoRA's rank allocation). Optionally GaLore replaces AdamW for the linear weights
/// (<see cref="TrainingSettings.GaLore"/>), and several adapters train together as SVGD particles or deep-ensemble
/// members (<see cref="ParticleSet"/>).
/// </summary>
/// <remarks>
/// Determinism: the batch plan is a function of (seed, epoch), the optimizer and schedule are deterministic and the
/// engine's kernels do not depend on timing, so the same seed, data and settings give bit-identical weights; a run
/// resumed from a checkpoint continues exactly where the interrupted one was. A micro-batch's loss is weighted by its
/// share of the rows in its accumulation group, so an optimizer step always sees the mean over the group's rows.
/// Stateful hooks (AdaLoRA's importance averages) are not checkpointed: a resumed AdaLoRA run restarts them, so only
/// runs whose hooks keep no state (none, LoRA+) resume bit-identically.
/// </remarks>
internal sealed class TrainingLoop
{
    private readonly ISequenceClassifier model;
    private readonly TrainingSettings settings;
    private readonly int paddingId;
    private readonly IProgress<TrainingProgress>? progress;
    private readonly Action<string>? log;
    private readonly PeftModel? adapter;
    private readonly ParticleSet? particles;
    private readonly Stopwatch clock = new();

    /// <param name="model">The classifier to train.</param>
    /// <param name="settings">Hyper-parameters.</param>
    /// <param name="paddingId">The id written into padding positions.</param>
    /// <param name="progress">Receives progress reports.</param>
    /// <param name="log">Receives log lines.</param>
    /// <param name="adapter">The PEFT model wrapping <paramref name="model"/>'s module, whose method's training hooks
    /// the loop runs; null for a plain model (then <see cref="TrainingSettings.LoraPlusLearningRateRatio"/> must be null).</param>
    /// <param name="particles">Adapters of <paramref name="adapter"/> trained together (SVGD, deep ensembles): every
    /// micro-batch runs once per particle, each particle's gradient is clipped alone and, for SVGD, turned into its
    /// Stein direction; validation scores their mean prediction. Null: the active adapter alone.</param>
    public TrainingLoop(ISequenceClassifier model, TrainingSettings settings, int paddingId, IProgress<TrainingProgress>? progress = null, Action<string>? log = null, PeftModel? adapter = null,
        ParticleSet? particles = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(settings);
        this.adapter = adapter;
        this.particles = particles;
        this.model = model;
        this.settings = settings;
        this.paddingId = paddingId;
        this.progress = progress;
        this.log = log;
    }

    /// <summary>Trains, returning the final counters and per-epoch history.</summary>
    public TrainerState Run(IReadOnlyList<ClassificationExample> train, IReadOnlyList<ClassificationExample>? validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        settings.Validate();
        CheckExamples(train, "training");
        if (validation is not null) CheckExamples(validation, "validation");
        if (settings.EarlyStoppingPatience > 0 && validation is null)
            throw new ArgumentException("EarlyStoppingPatience needs a validation set", nameof(validation));
        particles?.Activate(0);
        var trainable = model.Module.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToList();
        if (trainable.Count == 0) throw new InvalidOperationException("the model has no trainable parameters");

        if (settings.LoraPlusLearningRateRatio is not null && (adapter is null || particles is not null))
            throw new ArgumentException("LoraPlusLearningRateRatio needs a model with one PEFT adapter (not particles)", nameof(settings));

        int batchesPerEpoch = BatchPlanner.BatchesPerEpoch(train.Count, settings.BatchSize);
        int stepsPerEpoch = (batchesPerEpoch + settings.GradientAccumulationSteps - 1) / settings.GradientAccumulationSteps;
        int totalSteps = checked(stepsPerEpoch * settings.Epochs);
        // Particles are plain LoRA adapters: no method hooks, one group per decay rule over all of them.
        var hooks = adapter is null || particles is not null ? null : AdapterTrainingHooks.Create(adapter, totalSteps, settings.LoraPlusLearningRateRatio);
        var groups = OptimizerGroups.Build(trainable, hooks?.ParameterGroups(adapter!));
        // GaLore keeps the same groups (decay rule, LoRA+ scales, clipping order) and projects the linear weights among them.
        Optimizer optimizer = settings.GaLore is { } galore
            ? new GaLore.GaLoreAdamW(groups, GaLore.GaLoreAdamW.ProjectedWeights(model.Module), galore, settings.LearningRate, weightDecay: settings.WeightDecay)
            : settings.OptimizerState == AdamWStateStorage.Float32
                ? new AdamW(groups, settings.LearningRate, weightDecay: settings.WeightDecay)
                : new AdamW8Bit(groups, settings.OptimizerState, settings.LearningRate, weightDecay: settings.WeightDecay);
        using var pagedFile = optimizer as IDisposable;
        var scheduler = new LearningRateScheduler(optimizer, new LinearWarmupSchedule(settings.WarmupSteps(totalSteps), totalSteps));

        clock.Restart();
        var run = new RunContext(trainable, optimizer, totalSteps, settings.CheckpointFolder is { } f ? new CheckpointStore(f) : null, hooks)
        {
            State = new TrainerState { Fingerprint = RunFingerprint.Compute(settings, model, paddingId, train, validation) },
        };
        if (run.Store?.Latest() is { } latest) Resume(run, latest, scheduler);

        var lengths = train.Select(e => e.Length).ToArray();
        var state = run.State;
        while (state.Epoch < settings.Epochs && !state.Stopped)
        {
            var plan = BatchPlanner.Plan(lengths, settings.BatchSize, settings.BatchOrder, settings.Seed, state.Epoch);
            model.Module.Train();
            while (state.NextBatch < plan.Length)
            {
                int groupEnd = Math.Min(state.NextBatch + settings.GradientAccumulationSteps, plan.Length);
                int groupRows = 0;
                for (int b = state.NextBatch; b < groupEnd; b++) groupRows += plan[b].Length;
                double lossSum = 0;
                for (int b = state.NextBatch; b < groupEnd; b++) lossSum += MicroStep(run, train, plan[b], groupRows, addsExtraLoss: b == groupEnd - 1);
                OptimizerStep(run, scheduler, groupEnd, lossSum, groupRows, endsEpoch: groupEnd == plan.Length);
            }
            EndEpoch(run, validation);
        }
        if (settings.EarlyStoppingPatience > 0 && run.Best is not null) CopyInto(run.Trainable, run.Best);
        Report(new TrainingProgress { Phase = TrainingPhase.Completed, Epoch = Math.Max(0, state.Epoch - 1), Epochs = settings.Epochs, Step = state.GlobalStep, TotalSteps = totalSteps, Elapsed = clock.Elapsed }, always: true);
        return state;
    }

    /// <summary>
    /// Forward and backward of one micro-batch; returns Σ loss over its rows. The method's extra term (a function of the
    /// adapter weights only, unchanged within an accumulation group) joins the backward of one micro-batch per optimizer
    /// step, <paramref name="addsExtraLoss"/>, with weight 1: the step's gradient is ∇(mean task loss over the group's
    /// rows + extra), as when PEFT adds it to every forward's loss and the trainer divides each by the group's share.
    /// </summary>
    private double MicroStep(RunContext run, IReadOnlyList<ClassificationExample> train, int[] rows, int groupRows, bool addsExtraLoss)
    {
        if (particles is null) return MicroStepOnce(run, train, rows, groupRows, addsExtraLoss);
        double sum = 0;
        for (int i = 0; i < particles.Count; i++)
        {
            particles.Activate(i);
            sum += MicroStepOnce(run, train, rows, groupRows, addsExtraLoss);
        }
        particles.Activate(0);
        return particles.Count == 1 ? sum : sum / particles.Count;   // the particles' mean loss
    }

    private double MicroStepOnce(RunContext run, IReadOnlyList<ClassificationExample> train, int[] rows, int groupRows, bool addsExtraLoss)
    {
        using var scope = TensorScope.Begin();
        var batch = TokenBatch.Collate(train, rows, paddingId);
        var labels = new int[rows.Length];
        for (int i = 0; i < rows.Length; i++) labels[i] = train[rows[i]].Label;
        var logits = model.Forward(batch);
        var loss = logits.CrossEntropy(Tensor.FromInt32(labels, labels.Length));
        float value = loss.Item();
        if (!float.IsFinite(value))
            throw Diverged(run, $"the training loss is {value}");
        // The reported loss stays the task loss.
        var weighted = rows.Length == groupRows ? loss : loss.Mul((float)rows.Length / groupRows);
        if (addsExtraLoss && run.Hooks?.ExtraLoss(adapter!) is { } extra) weighted = weighted.Add(extra);
        weighted.Backward();
        return (double)value * rows.Length;
    }

    private void OptimizerStep(RunContext run, LearningRateScheduler scheduler, int groupEnd, double lossSum, int groupRows, bool endsEpoch)
    {
        var parameters = run.Optimizer.Parameters;
        double norm = particles is not null ? particles.PrepareStep(parameters, settings.MaxGradNorm)
            : settings.MaxGradNorm is { } max ? GradientClipping.ClipGradNorm(parameters, max) : GradientClipping.GlobalNorm(parameters);
        if (!double.IsFinite(norm))
        {
            run.Optimizer.ZeroGrad();
            throw Diverged(run, $"the gradient norm is {norm}");
        }
        double learningRate = run.Optimizer.LearningRate;
        run.Optimizer.Step();
        scheduler.Step();
        // Before ZeroGrad: AdaLoRA's allocator reads the gradients of the step just taken.
        run.Hooks?.AfterOptimizerStep(adapter!, run.State.GlobalStep);
        run.Optimizer.ZeroGrad();
        var state = run.State;
        state.GlobalStep++;
        state.NextBatch = groupEnd;
        state.EpochLossSum += lossSum;
        state.EpochRows += groupRows;
        // The epoch's last step is checkpointed right after validation instead (one checkpoint per step number).
        if (run.Store is not null && settings.CheckpointEverySteps > 0 && state.GlobalStep % settings.CheckpointEverySteps == 0 && !endsEpoch) SaveCheckpoint(run);
        int logEvery = Math.Max(1, run.TotalSteps / 50);
        Report(new TrainingProgress
        {
            Phase = TrainingPhase.Step, Epoch = state.Epoch, Epochs = settings.Epochs, Step = state.GlobalStep, TotalSteps = run.TotalSteps,
            Loss = lossSum / groupRows, LearningRate = learningRate, GradientNorm = norm, Elapsed = clock.Elapsed,
        }, always: state.GlobalStep % logEvery == 0);
    }

    private void EndEpoch(RunContext run, IReadOnlyList<ClassificationExample>? validation)
    {
        var state = run.State;
        var record = new EpochRecord { Epoch = state.Epoch, TrainLoss = state.EpochRows == 0 ? double.NaN : state.EpochLossSum / state.EpochRows };
        if (validation is not null)
        {
            var (loss, accuracy) = ClassifierInference.Evaluate(particles?.MeanPrediction(model) ?? model, validation, paddingId, settings.BatchSize);
            record.ValidationLoss = loss;
            record.ValidationAccuracy = accuracy;
            if (state.BestValidationLoss is not { } best || loss < best)
            {
                state.BestValidationLoss = loss;
                state.BestEpoch = state.Epoch;
                state.EpochsWithoutImprovement = 0;
                if (settings.EarlyStoppingPatience > 0) run.Best = Snapshot(run.Trainable);
            }
            else
            {
                state.EpochsWithoutImprovement++;
            }
        }
        state.History.Add(record);
        state.Epoch++;
        state.NextBatch = 0;
        state.EpochLossSum = 0;
        state.EpochRows = 0;
        if (settings.EarlyStoppingPatience > 0 && state.EpochsWithoutImprovement >= settings.EarlyStoppingPatience)
        {
            state.Stopped = true;
            log?.Invoke($"early stopping after epoch {record.Epoch + 1}: no validation improvement for {state.EpochsWithoutImprovement} epoch(s); keeping epoch {state.BestEpoch + 1}'s weights");
        }
        if (run.Store is not null) SaveCheckpoint(run);
        Report(new TrainingProgress
        {
            Phase = TrainingPhase.Validation, Epoch = record.Epoch, Epochs = settings.Epochs, Step = state.GlobalStep, TotalSteps = run.TotalSteps,
            Loss = record.TrainLoss, ValidationLoss = record.ValidationLoss, ValidationAccuracy = record.ValidationAccuracy, Elapsed = clock.Elapsed,
        }, always: true);
    }

    private void SaveCheckpoint(RunContext run)
    {
        var tensors = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var shapes = new Dictionary<string, int[]>(StringComparer.Ordinal);
        run.State.AdamSteps.Clear();
        foreach (var (name, p) in run.Trainable)
        {
            tensors["param." + name] = p.ToArray();
            shapes["param." + name] = p.ShapeArray();
            if (ReadState(run.Optimizer, p) is { } s)
            {
                tensors["exp_avg." + name] = s.ExpAvg;
                tensors["exp_avg_sq." + name] = s.ExpAvgSq;
                shapes["exp_avg." + name] = shapes["exp_avg_sq." + name] = [s.ExpAvg.Length];
                run.State.AdamSteps[name] = s.Step;
            }
            if (run.Best is not null)
            {
                tensors["best." + name] = run.Best[name];
                shapes["best." + name] = p.ShapeArray();
            }
        }
        run.State.RandomOffsets = model.RandomStreams.Select(g => g.Offset).ToList();
        run.LastCheckpoint = run.Store!.Save(run.State, tensors, shapes);
        Report(new TrainingProgress
        {
            Phase = TrainingPhase.Checkpoint, Epoch = run.State.Epoch, Epochs = settings.Epochs, Step = run.State.GlobalStep, TotalSteps = run.TotalSteps,
            CheckpointPath = run.LastCheckpoint, Elapsed = clock.Elapsed,
        }, always: false);
    }

    private void Resume(RunContext run, string checkpoint, LearningRateScheduler scheduler)
    {
        var (state, tensors) = CheckpointStore.Load(checkpoint);
        if (state.Fingerprint != run.State.Fingerprint)
        {
            throw new InvalidOperationException(
                $"The checkpoint {checkpoint} belongs to a different run (its settings, data, base weights or trainable parameters differ from this one). " +
                "Delete the checkpoint folder or choose another one to start a new run.");
        }
        foreach (var (name, p) in run.Trainable)
        {
            if (!tensors.TryGetValue("param." + name, out var values) || values.Length != p.Count)
                throw new InvalidDataException($"checkpoint {checkpoint} lacks a matching 'param.{name}' for {p}");
            using (Autograd.NoGrad()) values.CopyTo(p.AsSpan<float>());
            if (state.AdamSteps.TryGetValue(name, out int step))
                WriteState(run.Optimizer, p, tensors["exp_avg." + name], tensors["exp_avg_sq." + name], step);
        }
        if (tensors.Keys.Any(k => k.StartsWith("best.", StringComparison.Ordinal)))
            run.Best = run.Trainable.ToDictionary(t => t.Name, t => tensors["best." + t.Name], StringComparer.Ordinal);
        if (state.RandomOffsets.Count != model.RandomStreams.Count)
            throw new InvalidDataException($"checkpoint {checkpoint} saved {state.RandomOffsets.Count} random streams but the model has {model.RandomStreams.Count}");
        for (int i = 0; i < state.RandomOffsets.Count; i++) model.RandomStreams[i].Offset = state.RandomOffsets[i];
        for (int i = 0; i < state.GlobalStep; i++) scheduler.Step();
        run.State = state;
        run.LastCheckpoint = checkpoint;
        Report(new TrainingProgress
        {
            Phase = TrainingPhase.Resumed, Epoch = state.Epoch, Epochs = settings.Epochs, Step = state.GlobalStep, TotalSteps = run.TotalSteps,
            CheckpointPath = checkpoint, Elapsed = clock.Elapsed,
        }, always: true);
    }

    private TrainingDivergedException Diverged(RunContext run, string what)
    {
        int step = run.State.GlobalStep + 1;
        string kept = run.LastCheckpoint is { } c ? $"The last good checkpoint is {c}." : "No checkpoint was written (set a checkpoint folder to keep one).";
        return new TrainingDivergedException(
            $"Training diverged at step {step} (epoch {run.State.Epoch + 1}): {what}; no update was applied. {kept} Try a lower learning rate or gradient clipping.")
        {
            Step = step,
            LastCheckpoint = run.LastCheckpoint,
        };
    }

    private void Report(TrainingProgress report, bool always)
    {
        if (always) log?.Invoke(report.ToString());
        progress?.Report(report);
    }

    private void CheckExamples(IReadOnlyList<ClassificationExample> examples, string what)
    {
        if (examples.Count == 0) throw new ArgumentException($"the {what} set has no rows");
        for (int i = 0; i < examples.Count; i++)
        {
            if ((uint)examples[i].Label >= (uint)model.NumLabels)
                throw new ArgumentException($"{what} row {i} has class {examples[i].Label}, outside 0..{model.NumLabels - 1}");
            if (examples[i].Length == 0) throw new ArgumentException($"{what} row {i} has no tokens");
        }
    }

    /// <summary>
    /// A parameter's AdamW moments as float32 (8-bit states dequantized) and its step, or null before its first
    /// update: what a checkpoint stores, whatever the state storage.
    /// </summary>
    private static (float[] ExpAvg, float[] ExpAvgSq, int Step)? ReadState(Optimizer optimizer, Tensor p)
    {
        if (optimizer is AdamW adam) return adam.GetState(p) is { } s ? (s.ExpAvg, s.ExpAvgSq, s.Step) : null;
        float[] m = new float[p.Count], v = new float[p.Count];
        return ((AdamW8Bit)optimizer).TryGetState(p, m, v, out int step) ? (m, v, step) : null;
    }

    /// <summary>Restores what <see cref="ReadState"/> saved (re-quantized for 8-bit states).</summary>
    private static void WriteState(Optimizer optimizer, Tensor p, float[] expAvg, float[] expAvgSq, int step)
    {
        if (optimizer is AdamW adam) adam.SetState(p, expAvg, expAvgSq, step);
        else ((AdamW8Bit)optimizer).SetState(p, expAvg, expAvgSq, step);
    }

    private static Dictionary<string, float[]> Snapshot(IReadOnlyList<(string Name, Tensor Parameter)> trainable) =>
        trainable.ToDictionary(t => t.Name, t => t.Parameter.ToArray(), StringComparer.Ordinal);

    private static void CopyInto(IReadOnlyList<(string Name, Tensor Parameter)> trainable, Dictionary<string, float[]> values)
    {
        using (Autograd.NoGrad())
        {
            foreach (var (name, p) in trainable) values[name].CopyTo(p.AsSpan<float>());
        }
    }

    /// <summary>Everything one call of <see cref="TrainingLoop.Run"/> carries between its phases.</summary>
    private sealed class RunContext(List<(string Name, Tensor Parameter)> trainable, Optimizer optimizer, int totalSteps, CheckpointStore? store, IAdapterTrainingHooks? hooks)
    {
        public IAdapterTrainingHooks? Hooks { get; } = hooks;

        public List<(string Name, Tensor Parameter)> Trainable { get; } = trainable;

        public Optimizer Optimizer { get; } = optimizer;

        public int TotalSteps { get; } = totalSteps;

        public CheckpointStore? Store { get; } = store;

        public TrainerState State { get; set; } = new();

        public Dictionary<string, float[]>? Best { get; set; }

        public string? LastCheckpoint { get; set; }
    }
}
