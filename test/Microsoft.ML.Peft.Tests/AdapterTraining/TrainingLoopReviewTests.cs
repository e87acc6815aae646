using Microsoft.ML.Peft.AdaLora;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.MLNet;
using Microsoft.ML.Peft.Tests.Training;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.AdapterTraining;

/// <summary>The review findings on the training loop: the extra loss with accumulation, one global norm, composed hook groups.</summary>
[TestClass]
public sealed class TrainingLoopReviewTests
{
    /// <summary>
    /// AdaLoRA's orthogonality term joins the step once: one optimizer step over 7 rows as one batch, and as micro-batches
    /// of 4 + 3 rows accumulated, report the same gradient norm (no clipping) and reach the same weights (float rounding
    /// of the split sums only). Dropout 0, so both see the same function.
    /// </summary>
    [TestMethod]
    public void AdaLoraExtraLoss_WithAccumulation_GivesTheSameStepAsOneBatch()
    {
        (double Norm, Dictionary<string, float[]> Weights) OneStep(int batchSize, int accumulation)
        {
            var config = new AdaLoraConfig
            {
                TargetModules = new[] { "q_proj", "v_proj" }, InitR = 4, TargetR = 2, TInit = 0, TFinal = 0, DeltaT = 1, Alpha = 4, OrthRegWeight = 0.5,
            };
            double norm = double.NaN;
            var options = new PeftTextClassificationTrainer.Options
            {
                BaseModel = TestPaths.Stories260K, PeftConfig = config, MaxEpochs = 1, BatchSize = batchSize, GradientAccumulationSteps = accumulation,
                LearningRate = 1e-2, WarmupRatio = 0, MaxGradientNorm = null, MaxSequenceLength = 24, Seed = 4, ScoringBatchSize = 8,
                Progress = new SyncProgress<TrainingProgress>(p => { if (p.Phase == TrainingPhase.Step) norm = p.GradientNorm; }),
            };
            var ml = new MLContext();
            var data = ml.Transforms.Conversion.MapValueToKey("Label").Fit(Sst2.Load(ml, Sst2.Train, 7)).Transform(Sst2.Load(ml, Sst2.Train, 7));
            var transformer = new PeftTextClassificationTrainer(options, ClassificationKind.Multiclass).Fit(data);
            var backend = (PeftTextClassifier)transformer.Scorer.Backend;
            var weights = backend.Peft.GetAdapterStateDict().ToDictionary(kv => kv.Key, kv => kv.Value.ToArray(), StringComparer.Ordinal);
            return (norm, weights);
        }

        var whole = OneStep(batchSize: 7, accumulation: 1);
        var split = OneStep(batchSize: 4, accumulation: 2);
        Assert.IsTrue(whole.Norm > 0);
        Assert.AreEqual(whole.Norm, split.Norm, 1e-5 * whole.Norm, "the same gradient");
        foreach (var (key, values) in whole.Weights)
        {
            var other = split.Weights[key];
            for (int i = 0; i < values.Length; i++) Assert.AreEqual(values[i], other[i], 1e-5 * (1 + Math.Abs(values[i])), $"{key}[{i}]");
        }
    }

    /// <summary>GlobalNorm is √Σg² over every gradient (3² + 4² + 12² = 13²), skipping parameters without one; ClipGradNorm reports it.</summary>
    [TestMethod]
    public void GlobalNorm_IsTheNormClippingUses()
    {
        var a = Tensor.Zeros(2).RequiresGrad_();
        var b = Tensor.Zeros(1).RequiresGrad_();
        var none = Tensor.Zeros(3).RequiresGrad_();
        a.Mul(Tensor.From([3f, 4f], 2)).Sum().Add(b.Mul(Tensor.From([12f], 1)).Sum()).Backward();
        Assert.AreEqual(13.0, GradientClipping.GlobalNorm([a, none, b]), 0);
        Assert.AreEqual(13.0, GradientClipping.ClipGradNorm([a, none, b], 1.0), 0);
        Assert.AreEqual(1.0, GradientClipping.GlobalNorm([a, b]), 1e-6, "clipped to 1");
    }

    /// <summary>
    /// A method's own groups and LoRA+ compose: each parameter's scale is the product, the method's decay override wins,
    /// and a plain single method group gives exactly LoRA+'s groups (so LoRA+ alone trains as before).
    /// </summary>
    [TestMethod]
    public void Compose_KeepsTheMethodGroupsAndLoraPlusScales()
    {
        Tensor a = Tensor.Zeros(2, 2), b = Tensor.Zeros(2, 2), bias = Tensor.Zeros(2), e = Tensor.Zeros(2, 1);
        ParameterGroup[] loraPlus = [new([a, e]), new([b], learningRateScale: 16), new([bias], weightDecay: 0, learningRateScale: 16)];
        var groups = AdapterTrainingHooks.Compose([new([a, b], learningRateScale: 0.5), new([e, bias], weightDecay: 0.3)], loraPlus);
        Assert.AreEqual(4, groups.Count);
        (Tensor[] Members, double? Decay, double Scale)[] expected =
            [([a], null, 0.5), ([b], null, 8), ([e], 0.3, 1), ([bias], 0.3, 16)];
        for (int g = 0; g < expected.Length; g++)
        {
            CollectionAssert.AreEqual(expected[g].Members, groups[g].Parameters.ToArray(), $"group {g}");
            Assert.AreEqual(expected[g].Decay, groups[g].WeightDecay, $"group {g} decay");
            Assert.AreEqual(expected[g].Scale, groups[g].LearningRateScale, $"group {g} scale");
        }

        var plain = AdapterTrainingHooks.Compose([new([a, b, bias, e])], loraPlus);
        Assert.AreEqual(3, plain.Count);
        for (int g = 0; g < 3; g++)
        {
            CollectionAssert.AreEqual(loraPlus[g].Parameters.ToArray(), plain[g].Parameters.ToArray());
            Assert.AreEqual(loraPlus[g].WeightDecay, plain[g].WeightDecay);
            Assert.AreEqual(loraPlus[g].LearningRateScale, plain[g].LearningRateScale);
        }
    }
}
