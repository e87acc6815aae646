using Microsoft.ML;
using Microsoft.ML.AutoML;
using Microsoft.ML.Data;
using Microsoft.ML.SearchSpace;
using MLNet.StandIn.Tests.ThirdParty;

namespace MLNet.StandIn.Tests.AutoML;

/// <summary>
/// The AutoML pattern Microsoft.ML.Peft uses (contract §9): a sweepable third-party trainer inside a SweepablePipeline,
/// and a custom ITrialRunner registered after SetPipeline that computes its own objective.
/// </summary>
[TestClass]
public sealed class CustomObjectiveTests
{
    public sealed class TemperatureOptions
    {
        [Range(0.05, 20.0, init: 1.0, logBase: true)]
        public double Temperature { get; set; } = 1;
    }

    private sealed class Example
    {
        public string Label { get; set; } = "";

        [VectorType(1)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    private static Example E(string label, float x) => new() { Label = label, Features = new[] { x } };

    private static readonly Example[] Train = { E("red", -1), E("green", 1), E("blue", 3), E("red", 1), E("green", 3), E("blue", 5) };

    private static readonly Example[] Validation = { E("red", 0.5f), E("green", 2.2f), E("blue", 3.2f), E("red", -0.3f), E("blue", 4.4f) };

    private static SweepablePipeline Pipeline(MLContext ml)
    {
        var trainer = ml.Auto().CreateSweepableEstimator(
            (ctx, o) => new NearestCentroidTrainer(temperature: o.Temperature), new SearchSpace<TemperatureOptions>());
        return ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(trainer)
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"));
    }

    /// <summary>Resolves the services ML.NET registers and minimises validation log-loss.</summary>
    private sealed class LogLossRunner : ITrialRunner
    {
        private readonly MLContext _context;
        private readonly SweepablePipeline _pipeline;
        private readonly ITrainValidateDatasetManager _data;

        public LogLossRunner(IServiceProvider services)
        {
            _context = (MLContext)services.GetService(typeof(MLContext))!;
            _pipeline = (SweepablePipeline)services.GetService(typeof(SweepablePipeline))!;
            _data = (ITrainValidateDatasetManager)services.GetService(typeof(IDatasetManager))!;
        }

        public List<(double Temperature, double Loss)> Trials { get; } = new();

        public Task<TrialResult> RunAsync(TrialSettings settings, CancellationToken ct)
        {
            var parameter = settings.Parameter["_pipeline_"];
            var model = _pipeline.BuildFromOption(_context, parameter).Fit(_data.LoadTrainDataset(_context, settings));
            double logLoss = _context.MulticlassClassification.Evaluate(model.Transform(_data.LoadValidateDataset(_context, settings))).LogLoss;
            Trials.Add((parameter["e1"]["Temperature"].AsType<double>(), logLoss));
            return Task.FromResult(new TrialResult { TrialSettings = settings, Model = model, Loss = logLoss, Metric = -logLoss });
        }

        public void Dispose()
        {
        }
    }

    [TestMethod]
    public void CustomRunnerOptimisesItsOwnObjective()
    {
        var ml = new MLContext(11);
        var train = ml.Data.LoadFromEnumerable(Train);
        var validation = ml.Data.LoadFromEnumerable(Validation);
        LogLossRunner? runner = null;
        var best = ml.Auto().CreateExperiment()
            .SetPipeline(Pipeline(ml))
            .SetDataset(train, validation)
            .SetTrialRunner(services => runner = new LogLossRunner(services))
            .SetRandomSearchTuner(seed: 3)
            .SetMaxModelToExplore(12)
            .Run();

        Assert.IsNotNull(runner);
        Assert.AreEqual(12, runner.Trials.Count);
        var argmin = runner.Trials.MinBy(t => t.Loss);
        Assert.AreEqual(argmin.Loss, best.Loss);
        Assert.AreEqual(argmin.Temperature, best.TrialSettings.Parameter["_pipeline_"]["e1"]["Temperature"].AsType<double>());
        Assert.IsTrue(runner.Trials.All(t => t.Temperature is >= 0.05 and <= 20.0));

        // Independent re-evaluation of the winning temperature outside AutoML gives the same objective.
        var refit = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(new NearestCentroidTrainer(temperature: argmin.Temperature))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        Assert.AreEqual(best.Loss, ml.MulticlassClassification.Evaluate(refit.Transform(validation)).LogLoss, 1e-12);
    }

    [TestMethod]
    public void BuiltInRunnerUsesTheRegisteredMetric()
    {
        var ml = new MLContext(5);
        var best = ml.Auto().CreateExperiment()
            .SetPipeline(Pipeline(ml))
            .SetDataset(ml.Data.LoadFromEnumerable(Train), ml.Data.LoadFromEnumerable(Validation))
            .SetMulticlassClassificationMetric(MulticlassClassificationMetric.MicroAccuracy, labelColumn: "Label")
            .SetMaxModelToExplore(3)
            .Run();
        // Validation points 0.5→red, 2.2→green, 3.2→blue (nearest of 0, 2, 4), −0.3→red, 4.4→blue: all correct at any temperature.
        Assert.AreEqual(1.0, best.Metric, 1e-15);
        Assert.AreEqual(-1.0, best.Loss, 1e-15);
        Assert.IsNotNull(best.Model);
    }

    [TestMethod]
    public void BuiltInRunnerCrossValidates()
    {
        var ml = new MLContext(5);
        var rows = Enumerable.Range(0, 30).Select(i => E(new[] { "red", "green", "blue" }[i % 3], (i % 3) * 10 + (i % 4) * 0.1f)).ToArray();
        var best = ml.Auto().CreateExperiment()
            .SetPipeline(Pipeline(ml))
            .SetDataset(ml.Data.LoadFromEnumerable(rows), fold: 3)
            .SetMulticlassClassificationMetric(MulticlassClassificationMetric.MacroAccuracy, labelColumn: "Label")
            .SetMaxModelToExplore(2)
            .Run();
        Assert.AreEqual(1.0, best.Metric, 1e-15);
    }
}
