using Microsoft.ML.Data;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.MLNet;

/// <summary>
/// <see cref="LaplaceCalibrator"/> on the real backend (stories260K + LoRA on q_proj/v_proj, head as modules_to_save)
/// in ML.NET pipelines. The posterior's algebra is tested against dense references in Bayesian/; here the references
/// are the MAP classifier's own scores, the exact one-dimensional Gaussian integral E[σ(m)] and the ML.NET evaluators.
/// </summary>
[TestClass]
public sealed class LaplaceCalibratorTests
{
    private static LoraTextClassificationTrainer.Options Options() => new()
    {
        BaseModel = TestPaths.Stories260K, MaxEpochs = 2, BatchSize = 16, LearningRate = 4e-3, MaxSequenceLength = 24, Seed = 5,
        LoraRank = 4, LoraAlpha = 8, LoraDropout = 0.05, TargetModules = ["q_proj", "v_proj"], ScoringBatchSize = 16,
    };

    private static string Temp(string what) => Path.Combine(Path.GetTempPath(), $"peft-{what}-{Guid.NewGuid():N}");

    /// <summary>E[σ(m)], m ~ N(μ, v), by the trapezoid rule on μ ± 12√v (error far below 1e-9).</summary>
    private static double ExactSigmoidExpectation(double mean, double variance)
    {
        if (variance <= 0) return 1 / (1 + Math.Exp(-mean));
        double sd = Math.Sqrt(variance), sum = 0, weights = 0;
        const int points = 40001;
        for (int i = 0; i < points; i++)
        {
            double z = -12 + 24.0 * i / (points - 1);
            double w = Math.Exp(-0.5 * z * z) * (i == 0 || i == points - 1 ? 0.5 : 1);
            sum += w / (1 + Math.Exp(-(mean + sd * z)));
            weights += w;
        }
        return sum / weights;
    }

    [TestMethod]
    public void Binary_Chain_ProbitMatchesGaussianIntegral_EvaluateAndEngineWork_SaveLoadBitIdentical()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 96);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 24);
        var model = ml.BinaryClassification.Trainers.LoraTextClassification(Options())
            .Append(ml.BinaryClassification.Calibrators.Laplace(new LaplaceCalibrator.Options { Seed = 1 }))
            .Fit(train);
        var lora = (LoraTextClassificationTransformer)model.First();
        var laplace = model.LastTransformer;
        Assert.AreEqual(CurvatureKind.Kfac, laplace.Curvature);
        Assert.AreEqual(96, laplace.DataCount);
        Assert.IsTrue(laplace.BlockNames.Contains("score"), "the modules_to_save head has a block");
        Assert.AreEqual(2 * 2 * 5 + 1, laplace.BlockNames.Count, "A and B of q_proj and v_proj in 5 layers, plus the head");
        Assert.IsTrue(laplace.PriorPrecision > 0 && double.IsFinite(laplace.LogMarginalLikelihood));

        var map = ml.Data.CreateEnumerable<BinaryScoredRow>(lora.Transform(dev), false).ToList();
        var rows = ml.Data.CreateEnumerable<BinaryLaplaceRow>(model.Transform(dev), false).ToList();
        Assert.AreEqual(24, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            Assert.IsTrue(r.LogitVariance > 0, $"row {i}: the margin has posterior variance");
            // Probit of the margin: Score = μ/√(1 + πv/8) with μ the MAP margin (the linearisation point).
            Assert.AreEqual(map[i].Score, r.Score * Math.Sqrt(1 + Math.PI / 8 * r.LogitVariance), 2e-4 * (1 + Math.Abs(map[i].Score)), $"row {i} mean");
            Assert.AreEqual(1 / (1 + Math.Exp(-r.Score)), r.Probability, 1e-6, $"row {i}: Probability = σ(Score)");
            Assert.AreEqual(r.Score > 0, r.PredictedLabel);
            Assert.IsTrue(Math.Abs(r.Score) <= Math.Abs(map[i].Score) + 1e-5, $"row {i}: the predictive is less confident than MAP");
            // The probit approximation against the exact Gaussian integral of the sigmoid (MacKay: error below ~0.02).
            Assert.AreEqual(ExactSigmoidExpectation(map[i].Score, r.LogitVariance), r.Probability, 0.02, $"row {i} probit vs exact");
            double p = r.Probability;
            Assert.AreEqual(-(p * Math.Log(p) + (1 - p) * Math.Log(1 - p)), r.PredictiveEntropy, 1e-5, $"row {i} entropy");
        }

        var metrics = ml.BinaryClassification.Evaluate(model.Transform(dev));
        Assert.AreEqual(rows.Count(r => r.PredictedLabel == r.Label) / 24.0, metrics.Accuracy, 1e-12);
        double logLoss = rows.Average(r => -Math.Log2(r.Label ? r.Probability : 1 - r.Probability));
        Assert.AreEqual(logLoss, metrics.LogLoss, 1e-5, "Evaluate reads the Bayesian Probability");

        var engine = ml.Model.CreatePredictionEngine<Sst2BinaryRow, BinaryLaplaceRow>(model);
        var inputs = ml.Data.CreateEnumerable<Sst2BinaryRow>(dev, false).ToList();
        for (int i = 0; i < 6; i++)
        {
            var single = engine.Predict(inputs[i]);
            Assert.AreEqual(rows[i].Probability, single.Probability, 1e-5, $"row {i}: one row alone vs inside a padded batch");
            Assert.AreEqual(rows[i].LogitVariance, single.LogitVariance, 1e-4 * rows[i].LogitVariance, $"row {i} variance");
        }

        string path = Temp("laplace") + ".zip";
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var again = ml.Data.CreateEnumerable<BinaryScoredRow>(lora.Transform(dev), false).ToList();
            for (int i = 0; i < map.Count; i++) Assert.AreEqual(map[i].Score, again[i].Score, $"row {i}: the classifier is untouched by the calibrator");
            var loaded = PeftModelPersistence.Load(ml, path, out _);
            var reloaded = ml.Data.CreateEnumerable<BinaryLaplaceRow>(loaded.Transform(dev), false).ToList();
            for (int i = 0; i < rows.Count; i++)
            {
                Assert.AreEqual(rows[i].Score, reloaded[i].Score, $"row {i}");
                Assert.AreEqual(rows[i].Probability, reloaded[i].Probability, $"row {i}");
                Assert.AreEqual(rows[i].LogitVariance, reloaded[i].LogitVariance, $"row {i}");
                Assert.AreEqual(rows[i].PredictiveEntropy, reloaded[i].PredictiveEntropy, $"row {i}");
            }
            var loadedLaplace = ((IEnumerable<ITransformer>)loaded).OfType<LaplaceCalibratorTransformer>().Single();
            Assert.AreEqual(laplace.LogMarginalLikelihood, loadedLaplace.LogMarginalLikelihood);
            CollectionAssert.AreEqual(laplace.PriorPrecisions.ToArray(), loadedLaplace.PriorPrecisions.ToArray());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void Multiclass_MapValueToKeyChain_MonteCarloAgreesWithExactIntegral_LayerwiseEvidence()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 64);
        var dev = Sst2.Load(ml, Sst2.Dev, 12);
        var calibrator = new LaplaceCalibrator.Options
        {
            Predictive = LaplacePredictiveKind.MonteCarlo, MonteCarloSamples = 20000, Seed = 3, PriorPrecisionStructure = PriorPrecisionStructure.Layerwise,
        };
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassification(Options()))
            .Append(ml.MulticlassClassification.LaplaceCalibrator(calibrator))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        var laplace = model.OfType<LaplaceCalibratorTransformer>().Single();
        Assert.AreEqual(laplace.BlockNames.Count, laplace.PriorPrecisions.Count);
        Assert.IsTrue(laplace.PriorPrecisions.Distinct().Count() > 1, "one λ per block");

        var scored = model.Transform(dev);
        var varianceType = scored.Schema["LogitVariance"].Type as VectorDataViewType;
        Assert.AreEqual(2, varianceType?.Size);
        var rows = ml.Data.CreateEnumerable<LaplaceRow>(scored, false).ToList();
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        scored.Schema["Label"].Annotations.GetValue("KeyValues", ref keyValues);
        var classNames = keyValues.DenseValues().Select(v => v.ToString()).ToArray();
        var map = ml.Data.CreateEnumerable<MapScoreRow>(model.Take(2).Aggregate(dev, (d, t) => t.Transform(d)), false).ToList();
        for (int i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            Assert.AreEqual(1.0, r.Score[0] + r.Score[1], 1e-6);
            Assert.AreEqual(classNames[r.Score[1] > r.Score[0] ? 1 : 0], r.PredictedLabel, $"row {i}: MapKeyToValue restores the label text");
            // Two classes: the softmax is σ(f₁ − f₀), and the MAP margin is the mean. The margin variance is
            // v₀ + v₁ − 2·cov, bracketed by the per-class variances; the MC estimate (20,000 draws) must match the
            // exact integral for the true v, which lies in [0, (√v₀ + √v₁)²].
            double margin = Math.Log(map[i].Score[1]) - Math.Log(map[i].Score[0]);
            double vMax = Math.Pow(Math.Sqrt(r.LogitVariance[0]) + Math.Sqrt(r.LogitVariance[1]), 2);
            double lo = Math.Min(ExactSigmoidExpectation(margin, 0), ExactSigmoidExpectation(margin, vMax));
            double hi = Math.Max(ExactSigmoidExpectation(margin, 0), ExactSigmoidExpectation(margin, vMax));
            Assert.IsTrue(r.Score[1] >= lo - 0.01 && r.Score[1] <= hi + 0.01, $"row {i}: MC {r.Score[1]} outside [{lo}, {hi}]");
        }
        var metrics = ml.MulticlassClassification.Evaluate(model.Take(3).Aggregate(dev, (d, t) => t.Transform(d)));
        Assert.AreEqual(rows.Count(r => (r.Score[1] > r.Score[0] ? 2u : 1u) == r.Label) / 12.0, metrics.MicroAccuracy, 1e-12, "Evaluate reads the Bayesian PredictedLabel");
    }

    [TestMethod]
    public void BadInput_ClearErrorsBeforeWork()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 32);

        // Not after a classifier.
        var lonely = Assert.ThrowsExactly<ArgumentException>(() => ml.BinaryClassification.Calibrators.Laplace().Fit(train));
        StringAssert.Contains(lonely.Message, "LoraTextClassification");

        // Prior precision ≤ 0.
        var options = Options();
        options.MaxEpochs = 1;
        var lora = ml.BinaryClassification.Trainers.LoraTextClassification(options).Fit(train);
        var zero = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            new LaplaceCalibrator(lora, new LaplaceCalibrator.Options { PriorPrecision = 0, PriorPrecisionTuning = LaplacePriorPrecisionTuning.Fixed }).Fit(lora.Transform(train)));
        StringAssert.Contains(zero.Message, "prior precision");

        // Label missing / not Boolean.
        var missing = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new LaplaceCalibrator(lora, new LaplaceCalibrator.Options { LabelColumnName = "Gold" }).Fit(train));
        StringAssert.Contains(missing.Message, "'Gold'");

        // A classifier whose model has no LoRA parameters (the tiny stand-in backend).
        var tiny = new LoraTextClassificationTrainer(Options(), ClassificationKind.Binary, new TinyFactory()).Fit(train);
        var noLora = Assert.ThrowsExactly<InvalidOperationException>(() => new LaplaceCalibrator(tiny).Fit(train));
        StringAssert.Contains(noLora.Message, "no LoRA parameters");

        // Non-finite curvature: a NaN in the first LoRA A matrix makes every output gradient NaN; the layer is named.
        var backend = (PeftTextClassifier)lora.Scorer.Backend;
        var (name, weight) = backend.Model.NamedParameters().First(p => p.Name.Contains("lora_A", StringComparison.Ordinal));
        weight.AsSpan<float>()[0] = float.NaN;
        var nan = Assert.ThrowsExactly<InvalidOperationException>(() => new LaplaceCalibrator(lora).Fit(train));
        StringAssert.Contains(nan.Message, name[..name.IndexOf(".lora_A", StringComparison.Ordinal)]);
    }

    /// <summary>
    /// The calibrator's posterior against LaplaceLora driven directly on the same model and rows, one unpadded example
    /// per batch straight from the token ids (the calibrator batches 16 length-sorted, padded rows with the mask): the
    /// exact Fisher makes both deterministic, so data count, MAP log-likelihood, evidence-tuned λ and the log evidence
    /// must agree to float rounding — for the scalar and the layer-wise prior.
    /// </summary>
    [TestMethod]
    public void Binary_PriorPrecisionAndEvidence_EqualDirectLaplaceLoraFit()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 40);
        var options = Options();
        options.MaxEpochs = 1;
        var lora = ml.BinaryClassification.Trainers.LoraTextClassification(options).Fit(train);
        var backend = (PeftTextClassifier)lora.Scorer.Backend;
        var rows = ml.Data.CreateEnumerable<Sst2BinaryRow>(train, false)
            .Select(r => (Ids: lora.Scorer.Encoder.Encode(r.Sentence1, null, out _).Ids, Label: r.Label ? 1 : 0)).ToList();
        Tensor Logits(Tensor ids)
        {
            var tokens = ids.ToInt32Array();
            return backend.Model.Forward(tokens, Enumerable.Repeat(1, tokens.Length).ToArray(), null, 1, tokens.Length);
        }

        foreach (var structure in new[] { PriorPrecisionStructure.Scalar, PriorPrecisionStructure.Layerwise })
        {
            var calibrated = new LaplaceCalibrator(lora, new LaplaceCalibrator.Options { Fisher = FisherKind.Exact, BatchSize = 16, PriorPrecisionStructure = structure })
                .Fit(lora.Transform(train));
            double[] lambdas;
            double evidence, logLikelihood;
            lock (lora.Scorer.Gate)
            {
                using var direct = LaplaceLora.Fit(backend.Peft, Logits, rows.Select(r => new LaplaceBatch(Tensor.FromInt32(r.Ids, 1, r.Ids.Length), [r.Label])).ToList(),
                    new LaplaceLoraOptions { Fisher = FisherKind.Exact, HeadModules = ["score"] });
                lambdas = direct.OptimizePriorPrecision(new PriorPrecisionOptions { Structure = structure });
                evidence = direct.LogMarginalLikelihood();
                logLikelihood = direct.TrainLogLikelihood;
                CollectionAssert.AreEqual(direct.Blocks.Select(b => b.Name).ToArray(), calibrated.BlockNames.ToArray());
            }
            Assert.AreEqual(40, calibrated.DataCount);
            Assert.AreEqual(logLikelihood, calibrated.Posterior.TrainLogLikelihood, 1e-5 * Math.Abs(logLikelihood), structure.ToString());
            Assert.HasCount(lambdas.Length, calibrated.PriorPrecisions);
            for (int b = 0; b < lambdas.Length; b++)
                Assert.AreEqual(lambdas[b], calibrated.PriorPrecisions[b], 1e-4 * lambdas[b], $"{structure} λ of block {b}");
            Assert.AreEqual(evidence, calibrated.LogMarginalLikelihood, 1e-5 * Math.Abs(evidence), $"{structure} log evidence");
        }
    }

    [TestMethod]
    public void Multiclass_LabelWithOtherClasses_IsRefused()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 32);
        var options = Options();
        options.MaxEpochs = 1;
        var fitted = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.LoraTextClassification(options)).Fit(train);
        var lora = fitted.LastTransformer;
        var threeClasses = ml.Data.LoadFromEnumerable(new[]
        {
            new Sst2Row { Sentence1 = "good", Label = "0" }, new Sst2Row { Sentence1 = "bad", Label = "1" }, new Sst2Row { Sentence1 = "meh", Label = "2" },
        });
        var keyed = ml.Transforms.Conversion.MapValueToKey("Label").Fit(threeClasses).Transform(threeClasses);
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new LaplaceCalibrator(lora).Fit(keyed));
        StringAssert.Contains(e.Message, "'Label'");
        StringAssert.Contains(e.Message, "3 classes");
    }
}

internal sealed class BinaryLaplaceRow
{
    public bool Label { get; set; }

    public float Score { get; set; }

    public float Probability { get; set; }

    public bool PredictedLabel { get; set; }

    public float PredictiveEntropy { get; set; }

    public float LogitVariance { get; set; }
}

internal sealed class MapScoreRow
{
    public float[] Score { get; set; } = [];
}

internal sealed class LaplaceRow
{
    public uint Label { get; set; }

    public float[] Score { get; set; } = [];

    public string PredictedLabel { get; set; } = "";

    public float PredictiveEntropy { get; set; }

    public float[] LogitVariance { get; set; } = [];
}
