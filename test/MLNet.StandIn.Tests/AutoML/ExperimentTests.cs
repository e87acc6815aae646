using Microsoft.ML;
using Microsoft.ML.AutoML;
using Microsoft.ML.SearchSpace;
using Microsoft.ML.SearchSpace.Option;

namespace MLNet.StandIn.Tests.AutoML;

[TestClass]
public sealed class ExperimentTests
{
    /// <summary>A trial runner driven by a delegate; records every trial it saw.</summary>
    private sealed class DelegateRunner : ITrialRunner
    {
        private readonly Func<TrialSettings, CancellationToken, Task<TrialResult>> _run;

        public DelegateRunner(Func<TrialSettings, CancellationToken, Task<TrialResult>> run)
        {
            _run = run;
        }

        public List<TrialSettings> Seen { get; } = new();

        public bool Disposed { get; private set; }

        public Task<TrialResult> RunAsync(TrialSettings settings, CancellationToken ct)
        {
            Seen.Add(settings);
            return _run(settings, ct);
        }

        public void Dispose() => Disposed = true;
    }

    private sealed class RecordingTuner : ITuner
    {
        private readonly ITuner _inner;

        public RecordingTuner(ITuner inner)
        {
            _inner = inner;
        }

        public List<TrialResult> Updates { get; } = new();

        public Parameter Propose(TrialSettings settings) => _inner.Propose(settings);

        public void Update(TrialResult result)
        {
            Updates.Add(result);
            _inner.Update(result);
        }
    }

    private sealed class RecordingMonitor : IMonitor
    {
        public List<string> Events { get; } = new();

        public void ReportBestTrial(TrialResult result) => Events.Add($"best {result.TrialSettings.TrialId}");

        public void ReportCompletedTrial(TrialResult result) => Events.Add($"completed {result.TrialSettings.TrialId}");

        public void ReportFailTrial(TrialSettings settings, Exception? exception = null) => Events.Add($"failed {settings.TrialId}");

        public void ReportRunningTrial(TrialSettings settings) => Events.Add($"running {settings.TrialId}");
    }

    private static AutoMLExperiment Experiment(MLContext ml, out SearchSpace ss)
    {
        ss = new SearchSpace();
        ss.Add("x", new UniformDoubleOption(0, 1));
        return ml.Auto().CreateExperiment().AddSearchSpace("p", ss);
    }

    private static Task<TrialResult> Result(TrialSettings s, double loss)
        => Task.FromResult(new TrialResult { TrialSettings = s, Loss = loss, Metric = -loss });

    [TestMethod]
    public void BestTrialIsTheLowestLossAndMonitorsSeeEveryTrial()
    {
        var ml = new MLContext(1);
        var losses = new[] { 5.0, 3.0, 4.0, 1.0, 2.0 };
        var runner = new DelegateRunner((s, _) => Result(s, losses[s.TrialId]));
        var monitor = new RecordingMonitor();
        var best = Experiment(ml, out _)
            .SetTrialRunner(runner)
            .SetGridSearchTuner(step: 5)
            .SetMonitor(monitor)
            .SetMaxModelToExplore(5)
            .Run();
        Assert.AreEqual(3, best.TrialSettings.TrialId);
        Assert.AreEqual(1.0, best.Loss);
        Assert.AreEqual(5, runner.Seen.Count);
        Assert.IsTrue(runner.Disposed);
        CollectionAssert.AreEqual(new[] { 0.0, 0.2, 0.4, 0.6, 0.8 }, runner.Seen.Select(s => s.Parameter["p"]["x"].AsType<double>()).ToArray());
        CollectionAssert.AreEqual(new[]
        {
            "running 0", "completed 0", "best 0", "running 1", "completed 1", "best 1", "running 2", "completed 2",
            "running 3", "completed 3", "best 3", "running 4", "completed 4",
        }, monitor.Events);
    }

    [TestMethod]
    public void FirstFailureBeforeAnySuccessIsRethrown()
    {
        var ml = new MLContext(1);
        var runner = new DelegateRunner((_, _) => throw new InvalidDataException("bad trial"));
        var error = Assert.ThrowsExactly<InvalidDataException>(() => Experiment(ml, out _).SetTrialRunner(runner).SetMaxModelToExplore(3).Run());
        Assert.AreEqual("bad trial", error.Message);
        Assert.AreEqual(1, runner.Seen.Count);
    }

    [TestMethod]
    public void LaterFailuresCountAsMaxValueLoss()
    {
        var ml = new MLContext(1);
        var runner = new DelegateRunner((s, _) => s.TrialId == 1 ? throw new InvalidOperationException("flaky") : Result(s, 10 - s.TrialId));
        var tuner = new RecordingTuner(new RandomSearchTuner(new SearchSpace { ["p"] = new SearchSpace { ["x"] = new UniformDoubleOption(0, 1) } }, 3));
        var best = Experiment(ml, out _).SetTrialRunner(runner).SetTuner(tuner).SetMaxModelToExplore(4).Run();
        Assert.AreEqual(3, best.TrialSettings.TrialId);
        Assert.AreEqual(4, tuner.Updates.Count);
        Assert.AreEqual(double.MaxValue, tuner.Updates[1].Loss);
        Assert.AreEqual(1, tuner.Updates[1].TrialSettings.TrialId);
    }

    [TestMethod]
    public void TimeLimitStopsTheLoop()
    {
        var ml = new MLContext(1);
        // Three instant trials, then one that only the 1 s limit can end: the count is exact whatever the machine's
        // load, and the 60 s guard only catches a limit that never fires (the loop would otherwise hang).
        double[] losses = [3, 1, 2];
        var runner = new DelegateRunner(async (s, ct) =>
        {
            if (s.TrialId < losses.Length) return new TrialResult { TrialSettings = s, Loss = losses[s.TrialId] };
            await Task.Delay(Timeout.Infinite, ct);
            return new TrialResult { TrialSettings = s };
        });
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var run = Experiment(ml, out _).SetTrialRunner(runner).SetTrainingTimeInSeconds(1).RunAsync();
        Assert.IsTrue(run.Wait(TimeSpan.FromSeconds(60)), "the time limit never stopped the loop");
        Assert.IsGreaterThanOrEqualTo(0.9, watch.Elapsed.TotalSeconds, "the loop ran until the limit");
        Assert.HasCount(4, runner.Seen, "three finished trials and the one the limit cancelled");
        Assert.AreEqual(1, run.Result.TrialSettings.TrialId);
        Assert.AreEqual(1.0, run.Result.Loss);
    }

    [TestMethod]
    public void StoppingBeforeAnySuccessIsATimeout()
    {
        var ml = new MLContext(1);
        var runner = new DelegateRunner(async (s, ct) =>
        {
            await Task.Delay(Timeout.Infinite, ct);
            return new TrialResult { TrialSettings = s };
        });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        Assert.ThrowsExactly<TimeoutException>(() => Experiment(ml, out _).SetTrialRunner(runner).RunAsync(cts.Token).GetAwaiter().GetResult());
    }

    [TestMethod]
    public void EciCostFrugalTunerNeedsAPipelineAndStartsAtItsDefault()
    {
        var ml = new MLContext(1);
        var runner = new DelegateRunner((s, _) => Result(s, 1));
        var withoutPipeline = Experiment(ml, out _).SetTrialRunner(runner).SetEciCostFrugalTuner().SetMaxModelToExplore(1);
        StringAssert.Contains(Assert.ThrowsExactly<InvalidOperationException>(() => withoutPipeline.Run()).Message, "SetPipeline");

        var lora = ml.Auto().CreateSweepableEstimator((ctx, o) => ctx.Transforms.CopyColumns("B", "A"), new SearchSpace<LoraOptions>());
        var pipeline = ml.Transforms.CopyColumns("C", "A").Append(lora);
        var recorded = new DelegateRunner((s, _) => Result(s, 1));
        ml.Auto().CreateExperiment().SetPipeline(pipeline).SetTrialRunner(recorded).SetEciCostFrugalTuner().SetMaxModelToExplore(1).Run();
        var first = recorded.Seen.Single().Parameter["_pipeline_"]["e1"];
        Assert.AreEqual(8, first["Rank"].AsType<int>(), "CFO starts at the search space's default (the cheap configuration)");
        Assert.AreEqual(1e-4, first["LearningRate"].AsType<double>(), 1e-12);
    }

    [TestMethod]
    public void ExperimentWithoutRunnerFailsClearly()
    {
        var ml = new MLContext(1);
        var error = Assert.ThrowsExactly<InvalidOperationException>(() => Experiment(ml, out _).SetMaxModelToExplore(1).Run());
        StringAssert.Contains(error.Message, "ITrialRunner");
    }

    [TestMethod]
    public void SweepablePipelineKeysSchemasAndBuild()
    {
        var ml = new MLContext(1);
        var ss = new SearchSpace<LoraOptions>();
        var lora = ml.Auto().CreateSweepableEstimator((ctx, o) => ctx.Transforms.CopyColumns("Rank" + o.Rank, "A"), ss);
        var other = ml.Auto().CreateSweepableEstimator((ctx, o) => ctx.Transforms.CopyColumns("Other", "A"), ss);
        var pipeline = ml.Transforms.CopyColumns("B", "A").Append(lora, other).Append(ml.Transforms.CopyColumns("C", "A"));

        CollectionAssert.AreEqual(new[] { "e0", "e1", "e2", "e3" }, pipeline.Estimators.Keys.ToArray());
        var space = pipeline.SearchSpace;
        CollectionAssert.AreEquivalent(new[] { "e0", "e1", "e2", "e3", "_SCHEMA_" }, space.Keys.ToArray());
        var schema = (ChoiceOption)space["_SCHEMA_"];
        CollectionAssert.AreEqual(new[] { "e0 * e1 * e3", "e0 * e2 * e3" }, schema.Choices.Select(c => c.AsType<string>()).ToArray());

        var parameter = pipeline.CurrentParameter;
        Assert.AreEqual("e0 * e1 * e3", parameter["_SCHEMA_"].AsType<string>());
        Assert.AreEqual(8, parameter["e1"]["Rank"].AsType<int>(), "a sweepable estimator starts at its search space's default");
        parameter["e1"]["Rank"] = Parameter.FromInt(4);
        var chain = pipeline.BuildFromOption(ml, parameter);
        Assert.AreEqual(3, chain.GetOutputSchema(SchemaShape.Create(ml.Data.LoadFromEnumerable(new[] { new ARow() }).Schema)).Count(c => c.Name is "B" or "Rank4" or "C"));
        Assert.AreEqual("e0=>e1=>e3", pipeline.ToString(parameter));
    }

    private sealed class ARow
    {
        public float A { get; set; }
    }
}
