using Microsoft.ML.AutoML;
using Microsoft.ML.Data;
using Microsoft.ML.Peft.AutoML;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.MLNet;
using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;

namespace Microsoft.ML.Peft.Tests.AutoML;

/// <summary>
/// The evidence trial runner inside a real AutoML experiment on stories260K (tiny settings): its evidence against
/// LaplaceLora driven directly one unpadded example at a time, its validation figures against the ML.NET scores,
/// cancellation, and bad input.
/// </summary>
[TestClass]
public sealed class LoraEvidenceTrialRunnerTests
{
    public TestContext TestContext { get; set; } = null!;

    private static LoraTextClassificationTrainer.Options Template() => new()
    {
        BaseModel = TestPaths.Stories260K, MaxEpochs = 1, BatchSize = 16, MaxSequenceLength = 16, Seed = 3, LoraDropout = 0.05,
        TargetModules = ["q_proj", "v_proj"], ScoringBatchSize = 16,
    };

    private static SweepablePipeline Pipeline(MLContext ml, LoraTextClassificationTrainer.Options template, params int[] ranks)
    {
        var space = new SearchSpace<LoraSweepParameters>
        {
            ["Rank"] = new ChoiceOption(ranks.Cast<object>().ToArray()),
            ["LearningRate"] = new ChoiceOption(5e-3),
            ["Alpha"] = new ChoiceOption(8.0),
        };
        return ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.Auto().MulticlassLoraTextClassification(template, space))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    }

    private sealed class Collector : IMonitor
    {
        public List<LoraEvidenceTrialResult> Completed { get; } = [];

        public List<int> Failed { get; } = [];

        public void ReportBestTrial(TrialResult result)
        {
        }

        public void ReportCompletedTrial(TrialResult result) => Completed.Add((LoraEvidenceTrialResult)result);

        public void ReportFailTrial(TrialSettings settings, Exception? exception = null) => Failed.Add(settings.TrialId);

        public void ReportRunningTrial(TrialSettings settings)
        {
        }
    }

    private sealed class KeyedRow
    {
        public string Sentence1 { get; set; } = "";

        public uint Label { get; set; }
    }

    private sealed class ScoredRow
    {
        public uint Label { get; set; }

        public float[] Score { get; set; } = [];
    }

    /// <summary>A trial's classifier backend and a reader of a data set as (token ids, 0-based label) through the chain's key mapping.</summary>
    private static (PeftTextClassifier Backend, Func<IDataView, List<(int[] Ids, int Label)>> Examples) Direct(MLContext ml, TransformerChain<ITransformer> chain)
    {
        var lora = chain.OfType<LoraTextClassificationTransformer>().Single();
        List<(int[] Ids, int Label)> Examples(IDataView data) => ml.Data.CreateEnumerable<KeyedRow>(chain.First().Transform(data), reuseRowObject: false)
            .Select(r => (lora.Scorer.Encoder.Encode(r.Sentence1, null, out _).Ids, (int)r.Label - 1)).ToList();
        return ((PeftTextClassifier)lora.Scorer.Backend, Examples);
    }

    /// <summary>Logits of one unpadded example given as a tensor of its token ids.</summary>
    private static Tensor SingleExampleLogits(PeftTextClassifier backend, Tensor ids)
    {
        var tokens = ids.ToInt32Array();
        return backend.Model.Forward(tokens, Enumerable.Repeat(1, tokens.Length).ToArray(), null, 1, tokens.Length);
    }

    private static List<LaplaceBatch> OneExampleBatches(List<(int[] Ids, int Label)> examples) =>
        examples.Select(x => new LaplaceBatch(Tensor.FromInt32(x.Ids, 1, x.Ids.Length), [x.Label])).ToList();

    [TestMethod]
    public void ExperimentOfTwoTrials_EvidenceMatchesLaplaceLoraOnUnpaddedExamples_DevFiguresMatchMlNetScores()
    {
        var ml = new MLContext(seed: 1);
        var train = Sst2.Load(ml, Sst2.Train, 48);
        var dev = Sst2.Load(ml, Sst2.Dev, 24);
        var monitor = new Collector();
        var evidenceOptions = new LoraEvidenceOptions { Laplace = new LaplaceLoraOptions { Fisher = FisherKind.Empirical }, BatchSize = 8 };
        var best = ml.Auto().CreateExperiment()
            .SetPipeline(Pipeline(ml, Template(), 2, 4))
            .SetDataset(train, dev)
            .SetTrialRunner(services => new LoraEvidenceTrialRunner(services, evidenceOptions))
            .SetGridSearchTuner()
            .SetMaxModelToExplore(2)
            .SetMonitor(monitor)
            .Run();

        Assert.HasCount(2, monitor.Completed);
        CollectionAssert.AreEqual(new[] { 2, 4 }, monitor.Completed.Select(t => t.TrialSettings.Parameter["_pipeline_"]["e1"]["Rank"].AsType<int>()).ToArray());
        Assert.AreSame(monitor.Completed.MinBy(t => t.Loss), best);
        foreach (var trial in monitor.Completed)
        {
            var e = trial.Evidence;
            Assert.AreEqual(-e.LogMarginalLikelihood, trial.Loss);
            Assert.AreEqual(e.LogMarginalLikelihood, trial.Metric);
            Assert.IsTrue(e.PriorPrecisionTuned);
            Assert.AreEqual(48, e.TrainingExamples);

            var chain = (TransformerChain<ITransformer>)trial.Model!;
            var lora = chain.OfType<LoraTextClassificationTransformer>().Single();
            var backend = (PeftTextClassifier)lora.Scorer.Backend;
            int rank = trial.TrialSettings.Parameter["_pipeline_"]["e1"]["Rank"].AsType<int>();
            // q_proj and v_proj of stories260K's 5 layers (64 → 64 and 64 → 32): A and B per layer, plus the 64 → 2 head.
            Assert.AreEqual(5 * (rank * 64 + 64 * rank + rank * 64 + 32 * rank) + 2 * 64, e.PosteriorParameters);

            // Reference: LaplaceLora over the same model, one example per batch (no padding), straight from the token ids.
            var keyedTrain = ml.Data.CreateEnumerable<KeyedRow>(chain.First().Transform(train), reuseRowObject: false).ToList();
            var examples = keyedTrain.Select(r => (Ids: lora.Scorer.Encoder.Encode(r.Sentence1, null, out _).Ids, Label: (int)r.Label - 1)).ToList();
            Tensor Logits(Tensor ids)
            {
                var tokens = ids.ToInt32Array();
                return backend.Model.Forward(tokens, Enumerable.Repeat(1, tokens.Length).ToArray(), null, 1, tokens.Length);
            }
            var batches = examples.Select(x => new LaplaceBatch(Tensor.FromInt32(x.Ids, 1, x.Ids.Length), [x.Label])).ToList();
            using (var direct = LaplaceLora.Fit(backend.Peft, Logits, batches, new LaplaceLoraOptions { Fisher = FisherKind.Empirical, HeadModules = ["score"] }))
            {
                double lambda = direct.OptimizePriorPrecision()[0];
                TestContext.WriteLine($"rank {rank}: evidence {e.LogMarginalLikelihood:R} (direct {direct.LogMarginalLikelihood():R}), λ {e.PriorPrecision:R} (direct {lambda:R}), log-lik {e.TrainLogLikelihood:R} (direct {direct.TrainLogLikelihood:R})");
                Assert.AreEqual(direct.TrainLogLikelihood, e.TrainLogLikelihood, 1e-4 * Math.Abs(e.TrainLogLikelihood));
                Assert.AreEqual(lambda, e.PriorPrecision, 1e-4 * lambda);
                Assert.AreEqual(direct.LogMarginalLikelihood(), e.LogMarginalLikelihood, 1e-5 * Math.Abs(e.LogMarginalLikelihood));
            }

            // Padded batches (16 consecutive rows) would let padding positions into the K-FAC input factor: the evidence
            // moves by far more than the tolerance above, which is why the runner batches rows of equal length.
            var rows = examples.Select(x => new Microsoft.ML.Peft.Training.ClassificationExample(x.Ids, null, x.Label)).ToList();
            Tensor PaddedLogits(Tensor indices) => backend.Forward(Microsoft.ML.Peft.Training.TokenBatch.Collate(rows, indices.ToInt32Array(), backend.PaddingId));
            var paddedBatches = Enumerable.Range(0, 3).Select(b => new LaplaceBatch(Tensor.FromInt32(Enumerable.Range(16 * b, 16).ToArray(), 16), rows.Skip(16 * b).Take(16).Select(r => r.Label).ToArray())).ToList();
            using (var padded = LaplaceLora.Fit(backend.Peft, PaddedLogits, paddedBatches, new LaplaceLoraOptions { Fisher = FisherKind.Empirical, HeadModules = ["score"] }))
            {
                padded.OptimizePriorPrecision();
                TestContext.WriteLine($"rank {rank}: evidence with padded batches {padded.LogMarginalLikelihood():R}");
                Assert.IsGreaterThan(1e-3 * Math.Abs(e.LogMarginalLikelihood), Math.Abs(padded.LogMarginalLikelihood() - e.LogMarginalLikelihood));
            }

            // The MAP training likelihood and dev figures equal what the ML.NET Score column gives.
            double ScoreLogLikelihood(IDataView data) => ml.Data.CreateEnumerable<ScoredRow>(chain.Transform(data), false).Sum(r => Math.Log(r.Score[r.Label - 1]));
            Assert.AreEqual(ScoreLogLikelihood(train), e.TrainLogLikelihood, 1e-4 * Math.Abs(e.TrainLogLikelihood));
            var scored = ml.Data.CreateEnumerable<ScoredRow>(chain.Transform(dev), false).ToList();
            Assert.AreEqual(scored.Count(r => (r.Score[1] > r.Score[0] ? 2u : 1u) == r.Label) / 24.0, e.ValidationAccuracy!.Value, 1e-12);
            Assert.AreEqual(scored.Average(r => -Math.Log(r.Score[r.Label - 1])), e.ValidationLogLoss!.Value, 1e-5);
            Assert.IsNull(e.LaplaceValidationLogLoss);
        }
    }

    /// <summary>
    /// A fixed λ from the Laplace search space reaches the evidence, and the runner's Laplace validation figures (probit
    /// accuracy and mean NLL on the dev rows) equal LaplaceLora driven directly on the trial's model: fitted one unpadded
    /// training example per batch with the same exact Fisher and λ, then predicting each dev row alone.
    /// </summary>
    [TestMethod]
    public void LaplaceSearchSpace_FixesThePriorPrecisionPerTrial_ValidationFiguresMatchDirectPrediction()
    {
        var ml = new MLContext(seed: 2);
        var monitor = new Collector();
        var prior = new SearchSpace<LaplacePriorParameters> { ["TunePriorPrecision"] = new ChoiceOption(false), ["PriorPrecision"] = new ChoiceOption(0.5) };
        var train = Sst2.Load(ml, Sst2.Train, 32);
        var dev = Sst2.Load(ml, Sst2.Dev, 16);
        ml.Auto().CreateExperiment()
            .SetPipeline(Pipeline(ml, Template(), 2))
            .AddSearchSpace(LoraEvidenceTrialRunner.PriorSearchSpaceKey, prior)
            .SetDataset(train, dev)
            .SetTrialRunner(services => new LoraEvidenceTrialRunner(services,
                new LoraEvidenceOptions { LaplaceValidation = true, Laplace = new LaplaceLoraOptions { Fisher = FisherKind.Exact } }))
            .SetMaxModelToExplore(1)
            .SetMonitor(monitor)
            .Run();
        var trial = monitor.Completed.Single();
        var e = trial.Evidence;
        Assert.IsFalse(e.PriorPrecisionTuned);
        Assert.AreEqual(0.5, e.PriorPrecision);

        var chain = (TransformerChain<ITransformer>)trial.Model!;
        var (backend, Examples) = Direct(ml, chain);
        Tensor Logits(Tensor ids) => SingleExampleLogits(backend, ids);
        var devRows = Examples(dev);
        int correct = 0;
        double nll = 0;
        using (var direct = LaplaceLora.Fit(backend.Peft, Logits, OneExampleBatches(Examples(train)),
            new LaplaceLoraOptions { Fisher = FisherKind.Exact, HeadModules = ["score"], PriorPrecision = 0.5 }))
        {
            Assert.AreEqual(direct.LogMarginalLikelihood(), e.LogMarginalLikelihood, 1e-5 * Math.Abs(e.LogMarginalLikelihood));
            foreach (var (ids, label) in devRows)
            {
                var p = direct.PredictProbit(Tensor.FromInt32(ids, 1, ids.Length));
                nll -= Math.Log(p[label]);
                if ((p[1] > p[0] ? 1 : 0) == label) correct++;
            }
        }
        TestContext.WriteLine($"Laplace dev accuracy {e.LaplaceValidationAccuracy} (direct {correct / 16.0}), NLL {e.LaplaceValidationLogLoss:R} (direct {nll / 16:R})");
        Assert.AreEqual(correct / 16.0, e.LaplaceValidationAccuracy!.Value, 1e-12);
        Assert.AreEqual(nll / 16, e.LaplaceValidationLogLoss!.Value, 1e-5);
    }

    /// <summary>
    /// With ConditionalFraction the trial trains on D₁ only (the MAP training likelihood equals the Score column summed over
    /// D₁ from the same seeded TrainTestSplit), and its loss is −log p(D₂ | D₁): the log probit predictive of the held-out
    /// D₂ rows under LaplaceLora fitted directly on D₁ (one unpadded example per batch, exact Fisher, evidence λ) and
    /// predicting each D₂ row alone.
    /// </summary>
    [TestMethod]
    public void ConditionalFraction_TrainsOnD1_LossIsTheProbitLogLikelihoodOfD2UnderTheD1Posterior()
    {
        var ml = new MLContext(seed: 4);
        var monitor = new Collector();
        var train = Sst2.Load(ml, Sst2.Train, 40);
        var dev = Sst2.Load(ml, Sst2.Dev, 8);
        var options = new LoraEvidenceOptions { ConditionalFraction = 0.25, ConditionalSplitSeed = 7, Laplace = new LaplaceLoraOptions { Fisher = FisherKind.Exact } };
        ml.Auto().CreateExperiment()
            .SetPipeline(Pipeline(ml, Template(), 2))
            .SetDataset(train, dev)
            .SetTrialRunner(services => new LoraEvidenceTrialRunner(services, options))
            .SetMaxModelToExplore(1)
            .SetMonitor(monitor)
            .Run();
        var trial = monitor.Completed.Single();
        var e = trial.Evidence;
        var split = ml.Data.TrainTestSplit(train, 0.25, seed: 7);
        int d1 = ml.Data.CreateEnumerable<Sst2Row>(split.TrainSet, false).Count(), d2 = ml.Data.CreateEnumerable<Sst2Row>(split.TestSet, false).Count();
        Assert.IsGreaterThan(0, d2);
        Assert.AreEqual(40, d1 + d2);
        Assert.AreEqual(d1, e.TrainingExamples);
        Assert.AreEqual(d2, e.ConditionalExamples);
        Assert.AreEqual(-e.ConditionalLogMarginalLikelihood!.Value, trial.Loss);
        Assert.AreEqual(e.ConditionalLogMarginalLikelihood.Value, trial.Metric);

        var chain = (TransformerChain<ITransformer>)trial.Model!;
        double ScoreLogLikelihood(IDataView data) => ml.Data.CreateEnumerable<ScoredRow>(chain.Transform(data), false).Sum(r => Math.Log(r.Score[r.Label - 1]));
        Assert.AreEqual(ScoreLogLikelihood(split.TrainSet), e.TrainLogLikelihood, 1e-4 * Math.Abs(e.TrainLogLikelihood));

        var (backend, Examples) = Direct(ml, chain);
        Tensor Logits(Tensor ids) => SingleExampleLogits(backend, ids);
        double heldOutLogLikelihood = 0;
        using (var direct = LaplaceLora.Fit(backend.Peft, Logits, OneExampleBatches(Examples(split.TrainSet)),
            new LaplaceLoraOptions { Fisher = FisherKind.Exact, HeadModules = ["score"] }))
        {
            direct.OptimizePriorPrecision();
            Assert.AreEqual(direct.LogMarginalLikelihood(), e.LogMarginalLikelihood, 1e-5 * Math.Abs(e.LogMarginalLikelihood));
            foreach (var (ids, label) in Examples(split.TestSet)) heldOutLogLikelihood += Math.Log(direct.PredictProbit(Tensor.FromInt32(ids, 1, ids.Length))[label]);
        }
        TestContext.WriteLine($"log p(D2|D1) {e.ConditionalLogMarginalLikelihood:R} (direct {heldOutLogLikelihood:R}) over {d2} rows; log p(D1) {e.LogMarginalLikelihood:R}");
        Assert.AreEqual(heldOutLogLikelihood, e.ConditionalLogMarginalLikelihood.Value, 1e-5 * Math.Abs(heldOutLogLikelihood));
    }

    [TestMethod]
    public void CancellationDuringTraining_StopsAtTheNextStep()
    {
        var ml = new MLContext(seed: 1);
        using var cts = new CancellationTokenSource();
        var steps = new List<int>();
        var template = Template();
        template.Progress = new Training.SyncProgress<TrainingProgress>(p =>
        {
            if (p.Phase != TrainingPhase.Step) return;
            steps.Add(p.Step);
            cts.Cancel();
        });
        var monitor = new Collector();
        var experiment = ml.Auto().CreateExperiment()
            .SetPipeline(Pipeline(ml, template, 2))
            .SetDataset(Sst2.Load(ml, Sst2.Train, 64), Sst2.Load(ml, Sst2.Dev, 8))
            .SetTrialRunner(services => new LoraEvidenceTrialRunner(services))
            .SetMaxModelToExplore(3)
            .SetMonitor(monitor);
        Assert.ThrowsExactly<TimeoutException>(() => experiment.RunAsync(cts.Token).GetAwaiter().GetResult());
        Assert.HasCount(1, steps, "64 rows in batches of 16 would take 4 steps; the trial stops at the step after the cancellation");
        CollectionAssert.AreEqual(new[] { 0 }, monitor.Failed);
        Assert.IsEmpty(monitor.Completed);
    }

    [TestMethod]
    public void BadInput_ClearErrors()
    {
        var ml = new MLContext(seed: 1);
        var missingPipeline = ml.Auto().CreateExperiment()
            .SetDataset(Sst2.Load(ml, Sst2.Train, 8), Sst2.Load(ml, Sst2.Dev, 8))
            .SetTrialRunner(services => new LoraEvidenceTrialRunner(services));
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => missingPipeline.Run()).Message, "SetPipeline");
        var template = Template();
        template.LoraConfig = new Microsoft.ML.Peft.Lora.LoraConfig();
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => ml.Auto().MulticlassLoraTextClassification(template)).Message, "LoraConfig");

        // A classifier without LoRA (the tests' tiny backend trains only a head).
        var train = Sst2.Load(ml, Sst2.Train, 32);
        var tiny = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(new LoraTextClassificationTrainer(new LoraTextClassificationTrainer.Options { BaseModel = TestPaths.Stories260K, MaxEpochs = 1, Sentence1ColumnName = "Sentence1" },
                ClassificationKind.Multiclass, new TinyFactory()))
            .Fit(train);
        var keyed = tiny.First().Transform(train);
        var tinyModel = tiny.OfType<LoraTextClassificationTransformer>().Single();
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => LoraEvidence.Compute(tinyModel, keyed)).Message, "no LoRA parameters");
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LoraEvidence.Compute(tinyModel, keyed, options: new LoraEvidenceOptions { PriorPrecision = 0 }));
        foreach (double fraction in new[] { 0.0, 1.0, double.NaN })
        {
            StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LoraEvidence.Compute(tinyModel, keyed, options: new LoraEvidenceOptions { ConditionalFraction = fraction })).Message,
                "ConditionalFraction");
        }

        // Labels with another class count than the model's.
        var lora = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.LoraTextClassification(Template())).Fit(train);
        var loraModel = lora.OfType<LoraTextClassificationTransformer>().Single();
        var threeClasses = ml.Transforms.Conversion.MapValueToKey("Label").Fit(ml.Data.LoadFromEnumerable(new[]
        {
            new Sst2Row { Sentence1 = "good", Label = "a" }, new Sst2Row { Sentence1 = "bad", Label = "b" }, new Sst2Row { Sentence1 = "meh", Label = "c" },
        }));
        var message = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LoraEvidence.Compute(loraModel, threeClasses.Transform(ml.Data.LoadFromEnumerable(new[] { new Sst2Row { Sentence1 = "x", Label = "a" } })))).Message;
        StringAssert.Contains(message, "'Label'");
        StringAssert.Contains(message, "3 classes");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => LoraEvidence.Compute(loraModel, train)).Message, "Label");
    }
}
