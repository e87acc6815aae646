namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// Kill → resume on an encoder whose base model applies dropout (the tiny random BERT fixture, hidden and attention
/// dropout 0.1): the checkpoint restores the base model's dropout stream as well as LoRA's, so the resumed run ends
/// bit-identical to an uninterrupted one.
/// </summary>
[TestClass]
public sealed class EncoderResumeTests
{
    [TestMethod]
    public void ResumeAfterKill_WithEncoderDropout_BitIdenticalToUninterrupted()
    {
        string model = EncoderPipelineTests.ModelFolder("bert", keepDropout: true);
        string folder = Path.Combine(Path.GetTempPath(), $"peft-bert-ckpt-{Guid.NewGuid():N}");
        try
        {
            var ml = new MLContext();
            var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 40).Select(i => new Sst2BinaryRow
            {
                Sentence1 = (i % 4) switch { 0 => "the movie was good fun", 1 => "a dull and boring plot", 2 => "great acting", _ => "the film is not very good" },
                Label = i % 4 is 0 or 2,
            }).ToList());
            LoraTextClassificationTrainer.Options Options(string? checkpoints, List<string>? log = null) => new()
            {
                BaseModel = model, MaxEpochs = 1, BatchSize = 8, LearningRate = 1e-2, MaxSequenceLength = 16, Seed = 7, LoraRank = 4, LoraAlpha = 8,
                LoraDropout = 0.1, CheckpointFolder = checkpoints, CheckpointEverySteps = checkpoints is null ? 0 : 2, Log = log is null ? null : log.Add,
            };
            float[] Scores(ITransformer m) => ml.Data.CreateEnumerable<BinaryScoredRow>(m.Transform(data), false).Select(r => r.Score).ToArray();
            var reference = Scores(ml.BinaryClassification.Trainers.LoraTextClassification(Options(null)).Fit(data));

            // The base model's dropout matters: the same run without it ends elsewhere, so a resume that drew other
            // masks could not match the reference by accident.
            string noDropout = EncoderPipelineTests.ModelFolder("bert");
            try
            {
                var withoutDropout = Options(null);
                withoutDropout.BaseModel = noDropout;
                CollectionAssert.AreNotEqual(reference, Scores(ml.BinaryClassification.Trainers.LoraTextClassification(withoutDropout).Fit(data)));
            }
            finally
            {
                Directory.Delete(noDropout, recursive: true);
            }

            var killed = Options(folder);
            killed.Progress = new Training.SyncProgress<TrainingProgress>(p =>
            {
                if (p.Phase == TrainingPhase.Step && p.Step == 3) throw new OperationCanceledException("simulated kill");
            });
            Assert.ThrowsExactly<OperationCanceledException>(() => ml.BinaryClassification.Trainers.LoraTextClassification(killed).Fit(data));
            var log = new List<string>();
            var resumedOptions = Options(folder, log);
            var events = new List<TrainingProgress>();
            resumedOptions.Progress = new Training.SyncProgress<TrainingProgress>(events.Add);
            var resumed = Scores(ml.BinaryClassification.Trainers.LoraTextClassification(resumedOptions).Fit(data));
            Assert.AreEqual(2, events.First(e => e.Phase == TrainingPhase.Resumed).Step);
            CollectionAssert.AreEqual(reference, resumed, "base-model dropout masks, LoRA dropout, weights and optimizer state continue exactly");
            Assert.IsFalse(log.Any(l => l.StartsWith("note:", StringComparison.Ordinal)), string.Join("\n", log));
        }
        finally
        {
            Directory.Delete(model, recursive: true);
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }
}
