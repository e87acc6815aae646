using Microsoft.ML.Data;
using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.MLNet;
using Microsoft.ML.Peft.Tests.Training;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Ensembles;

/// <summary>
/// <see cref="SvgdLoraTextClassificationTrainer"/> on stories260K + LoRA (q_proj, v_proj; head as modules_to_save)
/// through ML.NET. References: the LoRA trainer's own model (bit for bit), the members scored one by one, the LoRA
/// trainer's epoch checkpoints, dropout passes run by hand, and the entropy formulas computed here in double.
/// </summary>
[TestClass]
public sealed class SvgdLoraEstimatorTests
{
    private static SvgdLoraTextClassificationTrainer.Options Options(EnsembleMethod method, int particles, double dropout = 0.05, int epochs = 2) => new()
    {
        Method = method, ParticleCount = particles, BaseModel = TestPaths.Stories260K, MaxEpochs = epochs, BatchSize = 16, LearningRate = 4e-3,
        MaxSequenceLength = 24, Seed = 5, LoraRank = 4, LoraAlpha = 8, LoraDropout = dropout, TargetModules = ["q_proj", "v_proj"], ScoringBatchSize = 16,
    };

    private static LoraTextClassificationTrainer.Options LoraOptions(double dropout = 0.05, int epochs = 2) => new()
    {
        BaseModel = TestPaths.Stories260K, MaxEpochs = epochs, BatchSize = 16, LearningRate = 4e-3, MaxSequenceLength = 24, Seed = 5,
        LoraRank = 4, LoraAlpha = 8, LoraDropout = dropout, TargetModules = ["q_proj", "v_proj"], ScoringBatchSize = 16,
    };

    private static Dictionary<string, float[]> AdapterWeights(PeftTextClassificationTransformer classifier, string adapter = "default") =>
        ((PeftTextClassifier)classifier.Scorer.Backend).Peft.GetAdapterStateDict(adapter).ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal);

    private static void AssertSameWeights(Dictionary<string, float[]> expected, Dictionary<string, float[]> actual, string what)
    {
        CollectionAssert.AreEquivalent(expected.Keys.ToArray(), actual.Keys.ToArray(), what);
        foreach (var (key, values) in expected) CollectionAssert.AreEqual(values, actual[key], $"{what}: {key}");
    }

    private static double Entropy(IEnumerable<double> p) => -p.Where(x => x > 0).Sum(x => x * Math.Log(x));

    /// <summary>Each member's probabilities on <paramref name="data"/>, scored alone through member 0's classifier with that adapter active.</summary>
    private static List<float[][]> MemberScores(MLContext ml, EnsembleTextClassificationTransformer ensemble, IDataView data)
    {
        var peft = ((PeftTextClassifier)ensemble.Classifier.Scorer.Backend).Peft;
        var result = new List<float[][]>();
        foreach (var name in ensemble.MemberAdapters)
        {
            peft.SetAdapter(name);
            result.Add(ml.Data.CreateEnumerable<MapScoreRow>(ensemble.Classifier.Transform(data), false).Select(r => r.Score).ToArray());
        }
        peft.SetAdapter("default");
        return result;
    }

    [TestMethod]
    public void OneParticle_IsTheLoraTrainersModel_BitForBit_Binary()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 64);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 24);
        var lora = ml.BinaryClassification.Trainers.LoraTextClassification(LoraOptions()).Fit(train);
        var estimator = ml.BinaryClassification.Trainers.SvgdLoraTextClassification(Options(EnsembleMethod.Svgd, 1));
        var shape = estimator.GetOutputSchema(PipelineTests.SchemaShapeOf(ml, train));
        foreach (string column in new[] { "Score", "Probability", "PredictedLabel", "PredictiveEntropy", "MutualInformation" })
            Assert.IsTrue(shape.Any(c => c.Name == column), $"the estimator announces {column}");
        var svgd = estimator.Fit(train);
        foreach (string column in new[] { "PredictiveEntropy", "MutualInformation" })
            Assert.AreEqual(NumberDataViewType.Single, svgd.GetOutputSchema(train.Schema)[column].Type);
        Assert.AreEqual(1, svgd.MemberCount);
        AssertSameWeights(AdapterWeights(lora), AdapterWeights(svgd.Classifier), "adapter and head");
        CollectionAssert.AreEqual(lora.TrainingHistory.Select(h => h.TrainLoss).ToArray(), svgd.TrainingHistory.Select(h => h.TrainLoss).ToArray());

        var expected = ml.Data.CreateEnumerable<BinaryScoredRow>(lora.Transform(dev), false).ToList();
        var actual = ml.Data.CreateEnumerable<BinaryEnsembleRow>(svgd.Transform(dev), false).ToList();
        Assert.AreEqual(24, actual.Count);
        for (int i = 0; i < actual.Count; i++)
        {
            Assert.AreEqual(expected[i].Score, actual[i].Score, $"row {i} Score");
            Assert.AreEqual(expected[i].Probability, actual[i].Probability, $"row {i} Probability");
            Assert.AreEqual(expected[i].PredictedLabel, actual[i].PredictedLabel, $"row {i} PredictedLabel");
            Assert.AreEqual(0f, actual[i].MutualInformation, $"row {i}: one member does not disagree with itself");
            double p = 1 / (1 + Math.Exp(-(double)expected[i].Score));
            Assert.AreEqual(Entropy([p, 1 - p]), actual[i].PredictiveEntropy, 1e-6, $"row {i} entropy");
        }
        var metrics = ml.BinaryClassification.Evaluate(svgd.Transform(dev));
        var mapMetrics = ml.BinaryClassification.Evaluate(lora.Transform(dev));
        Assert.AreEqual(mapMetrics.LogLoss, metrics.LogLoss);
        Assert.AreEqual(mapMetrics.AreaUnderRocCurve, metrics.AreaUnderRocCurve);
    }

    /// <summary>
    /// Three SVGD particles in a MapValueToKey → SVGD → MapKeyToValue pipeline: the ensemble's Score is the mean of the
    /// members' probabilities scored one by one, entropy and mutual information follow their formulas, Evaluate reads
    /// the ensemble, the prediction engine agrees with batch scoring, and a saved pipeline reloads bit-identical.
    /// </summary>
    [TestMethod]
    public void ThreeParticles_Pipeline_MeanOfMembers_Evaluate_Engine_SaveLoadBitIdentical()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 64);
        var dev = Sst2.Load(ml, Sst2.Dev, 20);
        var model = ml.Transforms.Conversion.MapValueToKey("Label")
            .Append(ml.MulticlassClassification.Trainers.SvgdLoraTextClassification(Options(EnsembleMethod.Svgd, 3)))
            .Append(ml.Transforms.Conversion.MapKeyToValue("PredictedLabel"))
            .Fit(train);
        var ensemble = model.OfType<EnsembleTextClassificationTransformer>().Single();
        CollectionAssert.AreEqual(new[] { "default", "member_1", "member_2" }, ensemble.MemberAdapters.ToArray());
        Assert.AreEqual(2, ensemble.TrainingHistory.Count);

        var keyed = model.First().Transform(dev);
        var members = MemberScores(ml, ensemble, keyed);
        Assert.IsFalse(members[0][0].SequenceEqual(members[1][0]), "the particles differ");
        var rows = ml.Data.CreateEnumerable<EnsembleRow>(model.Transform(dev), false).ToList();
        VBuffer<ReadOnlyMemory<char>> keyValues = default;
        keyed.Schema["Label"].Annotations.GetValue("KeyValues", ref keyValues);
        var classNames = keyValues.DenseValues().Select(v => v.ToString()).ToArray();
        for (int i = 0; i < rows.Count; i++)
        {
            var each = members.Select(m => m[i].Select(x => (double)x).ToArray()).ToList();
            var mean = Enumerable.Range(0, 2).Select(c => each.Average(p => p[c])).ToArray();
            for (int c = 0; c < 2; c++) Assert.AreEqual(mean[c], rows[i].Score[c], 1e-6, $"row {i} class {c}: mean of the members");
            Assert.AreEqual(Entropy(mean), rows[i].PredictiveEntropy, 1e-5, $"row {i} entropy");
            Assert.AreEqual(Entropy(mean) - each.Average(Entropy), rows[i].MutualInformation, 1e-5, $"row {i} mutual information");
            Assert.AreEqual(classNames[mean[1] > mean[0] ? 1 : 0], rows[i].PredictedLabel, $"row {i}");
        }
        Assert.IsTrue(rows.Any(r => r.MutualInformation > 1e-7), "the particles disagree somewhere");

        var metrics = ml.MulticlassClassification.Evaluate(model.Take(2).Aggregate(dev, (d, t) => t.Transform(d)));
        var keyedRows = ml.Data.CreateEnumerable<KeyedEnsembleRow>(model.Take(2).Aggregate(dev, (d, t) => t.Transform(d)), false).ToList();
        Assert.AreEqual(keyedRows.Count(r => r.PredictedLabel == r.Label) / (double)keyedRows.Count, metrics.MicroAccuracy, 1e-12);
        Assert.AreEqual(keyedRows.Average(r => -Math.Log(r.Score[r.Label - 1])), metrics.LogLoss, 1e-5, "Evaluate reads the ensemble's Score");

        var engine = ml.Model.CreatePredictionEngine<Sst2Row, EnsembleRow>(model);
        var inputs = ml.Data.CreateEnumerable<Sst2Row>(dev, false).ToList();
        for (int i = 0; i < 4; i++)
        {
            var single = engine.Predict(inputs[i]);
            Assert.AreEqual(rows[i].Score[1], single.Score[1], 1e-5, $"row {i}: alone vs in a padded batch");
            Assert.AreEqual(rows[i].MutualInformation, single.MutualInformation, 1e-5, $"row {i}");
        }

        string path = Path.Combine(Path.GetTempPath(), $"peft-svgd-{Guid.NewGuid():N}.zip");
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var loaded = PeftModelPersistence.Load(ml, path, out _);
            var again = ml.Data.CreateEnumerable<EnsembleRow>(loaded.Transform(dev), false).ToList();
            for (int i = 0; i < rows.Count; i++)
            {
                CollectionAssert.AreEqual(rows[i].Score, again[i].Score, $"row {i}");
                Assert.AreEqual(rows[i].PredictedLabel, again[i].PredictedLabel, $"row {i}");
                Assert.AreEqual(rows[i].PredictiveEntropy, again[i].PredictiveEntropy, $"row {i}");
                Assert.AreEqual(rows[i].MutualInformation, again[i].MutualInformation, $"row {i}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>
    /// A deep ensemble without dropout: its member 0 trains exactly as the LoRA trainer alone (independent gradients,
    /// per-member clipping, element-wise AdamW), member 1 elsewhere; the mean is the members' mean.
    /// </summary>
    [TestMethod]
    public void DeepEnsemble_MemberZeroIsTheLoraTrainer_AndTheMeanIsTheMembers()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 48);
        var dev = Sst2.LoadBinary(ml, Sst2.Dev, 12);
        var lora = ml.BinaryClassification.Trainers.LoraTextClassification(LoraOptions(dropout: 0)).Fit(train);
        var deep = ml.BinaryClassification.Trainers.SvgdLoraTextClassification(Options(EnsembleMethod.DeepEnsemble, 2, dropout: 0)).Fit(train);
        AssertSameWeights(AdapterWeights(lora), AdapterWeights(deep.Classifier), "member 0");
        var member1 = AdapterWeights(deep.Classifier, "member_1");
        Assert.IsFalse(member1.First(kv => kv.Key.Contains("lora_A", StringComparison.Ordinal)).Value.SequenceEqual(AdapterWeights(lora).First(kv => kv.Key.Contains("lora_A", StringComparison.Ordinal)).Value));

        var peft = ((PeftTextClassifier)deep.Classifier.Scorer.Backend).Peft;
        var probabilities = new List<float[]>();
        foreach (var name in deep.MemberAdapters)
        {
            peft.SetAdapter(name);
            probabilities.Add(ml.Data.CreateEnumerable<BinaryScoredRow>(deep.Classifier.Transform(dev), false).Select(r => r.Probability).ToArray());
        }
        peft.SetAdapter("default");
        var rows = ml.Data.CreateEnumerable<BinaryEnsembleRow>(deep.Transform(dev), false).ToList();
        for (int i = 0; i < rows.Count; i++)
        {
            double p = (probabilities[0][i] + (double)probabilities[1][i]) / 2;
            Assert.AreEqual(p, rows[i].Probability, 1e-6, $"row {i}");
            Assert.AreEqual(Math.Log(p / (1 - p)), rows[i].Score, 1e-4, $"row {i}: Score = log-odds of the mean");
            Assert.AreEqual(rows[i].Score > 0, rows[i].PredictedLabel);
        }
    }

    /// <summary>
    /// A checkpoint ensemble of 2 over 3 epochs: member 0 is the final adapter, member 1 the adapter the LoRA trainer
    /// checkpointed at the end of epoch 2 (same run, read back from its checkpoint folder when epoch 2 is reported).
    /// </summary>
    [TestMethod]
    public void CheckpointEnsemble_MembersAreTheEpochEndWeights()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 32);
        string folder = Path.Combine(Path.GetTempPath(), $"peft-ckens-{Guid.NewGuid():N}");
        try
        {
            Dictionary<string, float[]>? tensors = null;
            var options = LoraOptions(epochs: 3);
            options.CheckpointFolder = folder;
            // The store keeps only its latest checkpoint; the epoch's is written just before the epoch is reported.
            options.Progress = new SyncProgress<TrainingProgress>(p =>
            {
                if (p.Phase == TrainingPhase.Validation && p.Epoch == 1) tensors = CheckpointStore.Load(new CheckpointStore(folder).Latest()!).Tensors;
            });
            var lora = ml.BinaryClassification.Trainers.LoraTextClassification(options).Fit(train);
            var ensemble = ml.BinaryClassification.Trainers.SvgdLoraTextClassification(Options(EnsembleMethod.CheckpointEnsemble, 2, epochs: 3)).Fit(train);
            CollectionAssert.AreEqual(new[] { "default", "member_1" }, ensemble.MemberAdapters.ToArray());
            AssertSameWeights(AdapterWeights(lora), AdapterWeights(ensemble.Classifier), "member 0 = final weights");

            Assert.IsNotNull(tensors);
            var peft = ((PeftTextClassifier)ensemble.Classifier.Scorer.Backend).Peft;
            peft.SetAdapter("member_1");
            var member = peft.TrainableParameters().ToList();
            peft.SetAdapter("default");
            var names = peft.TrainableParameters().Select(p => p.Name).ToList();
            Assert.AreEqual(names.Count, member.Count);
            for (int k = 0; k < names.Count; k++) CollectionAssert.AreEqual(tensors["param." + names[k]], member[k].Parameter.ToArray(), names[k]);
        }
        finally
        {
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>
    /// MC dropout: the Score equals dropout passes run by hand (the adapter's stream restarted at the seed, LoRA dropout
    /// layers alone in training mode, mean softmax); the passes disagree; a reloaded pipeline predicts bit-identical.
    /// </summary>
    [TestMethod]
    public void MonteCarloDropout_EqualsHandRunPasses_AndReloadsBitIdentical()
    {
        var ml = new MLContext();
        var train = Sst2.Load(ml, Sst2.Train, 32);
        var dev = Sst2.Load(ml, Sst2.Dev, 10);
        var options = Options(EnsembleMethod.MonteCarloDropout, 5, dropout: 0.3);
        options.MonteCarloSeed = 17;
        var model = ml.Transforms.Conversion.MapValueToKey("Label").Append(ml.MulticlassClassification.Trainers.SvgdLoraTextClassification(options)).Fit(train);
        var ensemble = model.LastTransformer;
        Assert.AreEqual(5, ensemble.MemberCount);
        var rows = ml.Data.CreateEnumerable<KeyedEnsembleRow>(model.Transform(dev), false).ToList();

        // By hand: the 10 rows form one scoring batch (ScoringBatchSize 16).
        var backend = (PeftTextClassifier)ensemble.Classifier.Scorer.Backend;
        var texts = ml.Data.CreateEnumerable<Sst2Row>(dev, false).Select(r => r.Sentence1).ToList();
        var batch = TokenBatch.Collate(texts.Select(t => ensemble.Classifier.Scorer.Encoder.Encode(t, null, out _).Ids).ToArray(), null, backend.PaddingId);
        var sum = new double[rows.Count, 2];
        var passes = new List<float[]>();
        backend.Module.Eval();
        foreach (var (name, module) in backend.Module.NamedModules())
        {
            if (module is Dropout && name.Contains("lora_dropout", StringComparison.Ordinal)) module.Train();
        }
        backend.RandomStreams[0].Offset = 17;
        for (int s = 0; s < 5; s++)
        {
            float[] logits;
            using (Autograd.NoGrad()) logits = backend.Forward(batch).ToArray();
            passes.Add(logits);
            for (int i = 0; i < rows.Count; i++)
            {
                var p = ClassifierInference.Softmax(logits.AsSpan(2 * i, 2));
                sum[i, 0] += p[0];
                sum[i, 1] += p[1];
            }
        }
        backend.Module.Eval();
        Assert.IsFalse(passes[0].SequenceEqual(passes[1]), "the passes draw different masks");
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.AreEqual(sum[i, 0] / 5, rows[i].Score[0], 1e-6, $"row {i}");
            Assert.AreEqual(sum[i, 1] / 5, rows[i].Score[1], 1e-6, $"row {i}");
        }
        Assert.IsTrue(rows.All(r => r.MutualInformation > 0), "dropout passes disagree on every row");
        // Mutual information from the hand-run passes, in double: entropy of the mean − mean of the passes' entropies.
        for (int i = 0; i < rows.Count; i++)
        {
            var each = passes.Select(logits => ClassifierInference.Softmax(logits.AsSpan(2 * i, 2)).Select(v => (double)v).ToArray()).ToList();
            double expected = Entropy([sum[i, 0] / 5, sum[i, 1] / 5]) - each.Average(Entropy);
            Assert.AreEqual(expected, rows[i].MutualInformation, 1e-6, $"row {i} mutual information");
        }

        string path = Path.Combine(Path.GetTempPath(), $"peft-mcd-{Guid.NewGuid():N}.zip");
        try
        {
            PeftModelPersistence.Save(ml, model, train.Schema, path);
            var again = ml.Data.CreateEnumerable<KeyedEnsembleRow>(PeftModelPersistence.Load(ml, path, out _).Transform(dev), false).ToList();
            for (int i = 0; i < rows.Count; i++)
            {
                CollectionAssert.AreEqual(rows[i].Score, again[i].Score, $"row {i}");
                Assert.AreEqual(rows[i].MutualInformation, again[i].MutualInformation, $"row {i}");
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [TestMethod]
    public void BadOptions_AreRejectedBeforeTraining_NamingTheSetting()
    {
        var ml = new MLContext();
        var train = Sst2.LoadBinary(ml, Sst2.Train, 8);
        void Rejects<T>(SvgdLoraTextClassificationTrainer.Options options, string name) where T : Exception
        {
            var ex = Assert.ThrowsExactly<T>(() => ml.BinaryClassification.Trainers.SvgdLoraTextClassification(options).Fit(train));
            StringAssert.Contains(ex.Message, name);
        }

        var zero = Options(EnsembleMethod.Svgd, 0);
        Rejects<ArgumentOutOfRangeException>(zero, "ParticleCount");
        var cold = Options(EnsembleMethod.Svgd, 2);
        cold.Temperature = 0;
        Rejects<ArgumentOutOfRangeException>(cold, "Temperature");
        Rejects<ArgumentOutOfRangeException>(Options(EnsembleMethod.CheckpointEnsemble, 3, epochs: 2), "MaxEpochs");
        Rejects<ArgumentOutOfRangeException>(Options(EnsembleMethod.MonteCarloDropout, 3, dropout: 0), "dropout");
        var plus = Options(EnsembleMethod.Svgd, 2);
        plus.LoraPlusLearningRateRatio = 16;
        Rejects<ArgumentException>(plus, "LoraPlusLearningRateRatio");
    }
}

internal sealed class BinaryEnsembleRow
{
    public bool Label { get; set; }

    public float Score { get; set; }

    public float Probability { get; set; }

    public bool PredictedLabel { get; set; }

    public float PredictiveEntropy { get; set; }

    public float MutualInformation { get; set; }
}

internal sealed class EnsembleRow
{
    public float[] Score { get; set; } = [];

    public string PredictedLabel { get; set; } = "";

    public float PredictiveEntropy { get; set; }

    public float MutualInformation { get; set; }
}

internal sealed class KeyedEnsembleRow
{
    public uint Label { get; set; }

    public float[] Score { get; set; } = [];

    public uint PredictedLabel { get; set; }

    public float MutualInformation { get; set; }
}
