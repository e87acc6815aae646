using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft;

/// <summary>
/// What <see cref="TextClassifierTraining"/> does differently for an ensemble: before training it adds the particles'
/// adapters (SVGD, deep ensembles); during training it snapshots the adapter at each epoch end (checkpoint
/// ensembles); afterwards it names the members the transformer averages. Member 0 is always the adapter "default",
/// so one member is exactly the LoRA trainer's model.
/// </summary>
internal sealed class EnsembleTraining(SvgdLoraTextClassificationTrainer.Options options)
{
    private readonly Queue<float[][]> snapshots = new();
    private PeftModel? peft;

    public SvgdLoraTextClassificationTrainer.Options Options { get; } = options;

    /// <summary>The members' adapter names once training is done.</summary>
    public IReadOnlyList<string> Members { get; private set; } = ["default"];

    /// <summary>Adds particles "member_1" … to the freshly built classifier; returns them for joint training, or null.</summary>
    public ParticleSet? Prepare(PeftModel model, int trainRows)
    {
        peft = model;
        if (Options.Method is not (EnsembleMethod.Svgd or EnsembleMethod.DeepEnsemble)) return null;
        var config = model.PeftConfigs["default"];
        var names = new List<string> { "default" };
        for (int i = 1; i < Options.ParticleCount; i++)
        {
            names.Add(MemberName(i));
            model.AddAdapter(names[i], config.Clone());
        }
        Members = names;
        return new ParticleSet(model, names, Options.Method == EnsembleMethod.Svgd, Options.Temperature / trainRows, Options.KernelBandwidth);
    }

    /// <summary>The user's progress, plus (checkpoint ensembles) a snapshot of the adapter after every epoch.</summary>
    public IProgress<TrainingProgress>? WrapProgress(IProgress<TrainingProgress>? user) =>
        Options.Method != EnsembleMethod.CheckpointEnsemble ? user : new Snapshotting(this, user);

    /// <summary>Checkpoint ensembles: the last n−1 epoch snapshots before the final one become adapters "member_1" ….</summary>
    public void Finish()
    {
        if (Options.Method != EnsembleMethod.CheckpointEnsemble) return;
        // The final weights are "default" itself; the newest snapshot equals them unless early stopping restored an
        // earlier epoch, so it is dropped and the n − 1 before it join.
        var older = snapshots.ToList();
        if (older.Count > 0) older.RemoveAt(older.Count - 1);
        var take = older.Skip(Math.Max(0, older.Count - (Options.ParticleCount - 1))).Reverse().ToList();
        if (take.Count < Options.ParticleCount - 1)
            throw new InvalidOperationException($"a checkpoint ensemble of {Options.ParticleCount} needs {Options.ParticleCount} epochs in this Fit, but only {snapshots.Count} ran (training stopped early or resumed from a checkpoint)");
        var config = peft!.PeftConfigs["default"];
        var names = new List<string> { "default" };
        for (int i = 0; i < take.Count; i++)
        {
            string name = MemberName(i + 1);
            peft.AddAdapter(name, config.Clone());
            peft.SetAdapter(name);
            var targets = peft.TrainableParameters().Select(p => p.Parameter).ToList();
            using (Autograd.NoGrad())
            {
                for (int k = 0; k < targets.Count; k++) take[i][k].CopyTo(targets[k].AsSpan<float>());
            }
            names.Add(name);
        }
        peft.SetAdapter("default");
        Members = names;
    }

    internal static string MemberName(int index) => $"member_{index}";

    private void Snapshot()
    {
        var values = peft!.TrainableParameters().Select(p => p.Parameter.ToArray()).ToArray();
        snapshots.Enqueue(values);
        while (snapshots.Count > Options.ParticleCount) snapshots.Dequeue();
    }

    /// <summary>Forwards reports; at each epoch end (the Validation phase, reported after every epoch) takes a snapshot first.</summary>
    private sealed class Snapshotting(EnsembleTraining owner, IProgress<TrainingProgress>? user) : IProgress<TrainingProgress>
    {
        public void Report(TrainingProgress value)
        {
            if (value.Phase == TrainingPhase.Validation) owner.Snapshot();
            user?.Report(value);
        }
    }
}
