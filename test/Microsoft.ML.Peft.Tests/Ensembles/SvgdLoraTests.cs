using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Ensembles;

[TestClass]
public sealed class SvgdLoraTests
{
    private static readonly LoraConfig Config = new() { TargetModules = new[] { "q_proj", "fc1" }, Rank = 2, Alpha = 4, ModulesToSave = ["classifier"] };

    private static (Tensor X, Tensor Labels) Batch(ulong seed)
    {
        var x = Tensor.Randn(new Generator(seed), 6, 8);
        var labels = Tensor.From([0f, 1f, 2f, 1f, 0f, 2f], 6).To(DType.Int32);
        return (x, labels);
    }

    /// <summary>
    /// Two particles on a line, θ = 0 and 1, loss gradients 0.5 and −0.2, T/N = 0.1. Squared distances [[0, 1], [1, 0]]
    /// have median 0.5, so H = 0.5/ln 3 and k₁₂ = exp(−1/H) = 1/9;
    /// G₁ = ½[0.5 + (1/9)(−0.2) + 0.1·(2/H)(1/9)(1 − 0)], G₂ = ½[(1/9)(0.5) + 0.1·(2/H)(1/9)(0 − 1) − 0.2].
    /// </summary>
    [TestMethod]
    public void Kernel_MatchesTheSvgdFormula_OnAHandExample()
    {
        var directions = new double[2][];
        double h = SvgdKernel.Directions([[0.0], [1.0]], [[0.5], [-0.2]], 0.1, directions);
        double expectedH = 0.5 / Math.Log(3), k = 1.0 / 9;
        Assert.AreEqual(expectedH, h, 1e-15);
        Assert.AreEqual(0.5 * (0.5 + k * -0.2 + 0.1 * (2 / expectedH) * k), directions[0][0], 1e-12);
        Assert.AreEqual(0.5 * (k * 0.5 - 0.1 * (2 / expectedH) * k - 0.2), directions[1][0], 1e-12);
    }

    /// <summary>One particle: SVGD is plain training — the same adapter and head, bit for bit, after three AdamW steps.</summary>
    [TestMethod]
    public void OneParticle_IsBitIdenticalToMapTraining()
    {
        var svgd = SvgdLora.Create(new TinyModel(new Generator(1)), Config, new SvgdOptions { Particles = 1 }, ps => new AdamW(ps, 1e-2), new Generator(5));
        var model = (TinyModel)svgd.Peft.Model;
        var plainModel = new TinyModel(new Generator(1));
        var plain = PeftModel.Inject(plainModel, Config, "particle_0", new Generator(5));
        var optimizer = new AdamW(plain.TrainableParameters().Select(p => p.Parameter), 1e-2);
        for (int step = 0; step < 3; step++)
        {
            var (x, labels) = Batch((ulong)step);
            svgd.Step(() => model.Forward(x).CrossEntropy(labels));
            optimizer.ZeroGrad();
            plainModel.Forward(x).CrossEntropy(labels).Backward();
            optimizer.Step();
        }
        var ours = svgd.ParticleParameters(0).Select(p => p.ToArray()).ToList();
        var expected = plain.TrainableParameters().Select(p => p.Parameter.ToArray()).ToList();
        Assert.AreEqual(expected.Count, ours.Count);
        for (int i = 0; i < ours.Count; i++) CollectionAssert.AreEqual(expected[i], ours[i], $"parameter {i}");
    }

    /// <summary>
    /// Non-repulsive particles are a deep ensemble: each particle ends where training it alone would. Repulsive
    /// particles end elsewhere, and the predictive is the mean of the members' softmax with a non-negative mutual
    /// information that is zero for identical members.
    /// </summary>
    [TestMethod]
    public void DeepEnsembleMembersTrainIndependently_AndSvgdDiffers()
    {
        SvgdLora Train(bool repulsive)
        {
            var svgd = SvgdLora.Create(new TinyModel(new Generator(1)), Config,
                new SvgdOptions { Particles = 3, Repulsive = repulsive, DataCount = 6, Temperature = 1 }, ps => new AdamW(ps, 5e-2), new Generator(7));
            var model = (TinyModel)svgd.Peft.Model;
            for (int step = 0; step < 4; step++)
            {
                var (x, labels) = Batch((ulong)step);
                svgd.Step(() => model.Forward(x).CrossEntropy(labels));
            }
            return svgd;
        }

        var ensemble = Train(repulsive: false);
        var svgd = Train(repulsive: true);
        Assert.AreNotEqual(1.0, svgd.LastBandwidth, "the median heuristic ran on distinct particles");

        // Particle 1 of the ensemble, retrained alone from the same initial values.
        var alone = SvgdLora.Create(new TinyModel(new Generator(1)), Config, new SvgdOptions { Particles = 3, Repulsive = false }, ps => new AdamW(ps, 5e-2), new Generator(7));
        var aloneModel = (TinyModel)alone.Peft.Model;
        var optimizer = new AdamW(alone.ParticleParameters(1), 5e-2);
        for (int step = 0; step < 4; step++)
        {
            var (x, labels) = Batch((ulong)step);
            alone.Peft.SetAdapter("particle_1");
            optimizer.ZeroGrad();
            aloneModel.Forward(x).CrossEntropy(labels).Backward();
            optimizer.Step();
        }
        for (int i = 0; i < alone.ParticleParameters(1).Count; i++)
        {
            CollectionAssert.AreEqual(alone.ParticleParameters(1)[i].ToArray(), ensemble.ParticleParameters(1)[i].ToArray());
        }
        Assert.IsFalse(svgd.ParticleParameters(1)[0].ToArray().SequenceEqual(ensemble.ParticleParameters(1)[0].ToArray()), "repulsion changed the particles");

        var (xTest, _) = Batch(99);
        var svgdModel = (TinyModel)svgd.Peft.Model;
        var prediction = svgd.Predict(() => svgdModel.Forward(xTest));
        var members = new List<float[]>();
        foreach (var name in svgd.ParticleNames)
        {
            svgd.Peft.SetAdapter(name);
            using (Autograd.NoGrad()) members.Add(svgdModel.Forward(xTest).Softmax().ToArray());
        }
        for (int i = 0; i < prediction.Probabilities.Length; i++)
        {
            Assert.AreEqual((members[0][i] + members[1][i] + members[2][i]) / 3, prediction.Probabilities[i], 1e-6);
        }
        Assert.IsTrue(prediction.MutualInformation.All(mi => mi > 0));
        // Mutual information = entropy of the mean − mean of the members' entropies, computed here in double.
        static double Entropy(IEnumerable<double> p) => -p.Where(x => x > 0).Sum(x => x * Math.Log(x));
        for (int row = 0; row < prediction.Rows; row++)
        {
            var rowProbabilities = members.Select(m => m.Skip(row * 3).Take(3).Select(x => (double)x).ToArray()).ToList();
            var mean = Enumerable.Range(0, 3).Select(c => rowProbabilities.Average(p => p[c])).ToArray();
            double expected = Entropy(mean) - rowProbabilities.Average(Entropy);
            Assert.AreEqual(expected, prediction.MutualInformation[row], 1e-6, $"row {row}");
            Assert.AreEqual(Entropy(mean), prediction.PredictiveEntropy[row], 1e-6, $"row {row}");
        }
        var same = EnsemblePrediction.FromMemberProbabilities([members[0], members[0]], 3);
        Assert.IsTrue(same.MutualInformation.All(mi => Math.Abs(mi) < 1e-6));
    }

    [TestMethod]
    public void Options_AreChecked()
    {
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SvgdOptions { Particles = 2 }.Validate());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SvgdOptions { Particles = 0 }.Validate());
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => new SvgdOptions { Particles = 2, DataCount = 10, Temperature = 0 }.Validate());
        new SvgdOptions { Particles = 2, Repulsive = false }.Validate();
    }
}

[TestClass]
public sealed class MonteCarloDropoutTests
{
    /// <summary>
    /// The predictive equals dropout passes run by hand from the same point of the random stream (training mode, mean
    /// softmax); without dropout every pass is the eval softmax (mutual information 0); with LoRA dropout 0.5 the passes
    /// disagree; the model's mode is restored.
    /// </summary>
    [TestMethod]
    public void Predict_EqualsHandRunDropoutPasses_AndRestoresTheMode()
    {
        foreach (double dropout in new[] { 0.0, 0.5 })
        {
            var model = new TinyModel(new Generator(1));
            var stream = new Generator(3);
            PeftModel.Inject(model, new LoraConfig { TargetModules = new[] { "q_proj", "fc1" }, Rank = 2, Dropout = dropout, InitLoraWeights = LoraInit.Random }, generator: stream);
            model.Eval();
            var x = Tensor.Randn(new Generator(8), 5, 8);
            float[] eval;
            using (Autograd.NoGrad()) eval = model.Forward(x).Softmax().ToArray();
            long start = stream.Offset;
            var prediction = MonteCarloDropout.Predict(model, () => model.Forward(x), samples: 8);
            Assert.IsFalse(model.IsTraining);

            stream.Offset = start;
            model.Train();
            var passes = new List<float[]>();
            using (Autograd.NoGrad())
            {
                for (int s = 0; s < 8; s++) passes.Add(model.Forward(x).Softmax().ToArray());
            }
            model.Eval();
            for (int i = 0; i < eval.Length; i++)
            {
                double mean = passes.Average(p => (double)p[i]);
                Assert.AreEqual(mean, prediction.Probabilities[i], 1e-6, $"entry {i}: the mean of the hand-run passes");
            }
            if (dropout == 0)
            {
                for (int i = 0; i < eval.Length; i++) Assert.AreEqual(eval[i], prediction.Probabilities[i], 1e-6);
                Assert.IsTrue(prediction.MutualInformation.All(mi => Math.Abs(mi) < 1e-6));
            }
            else
            {
                Assert.IsFalse(passes[0].SequenceEqual(passes[1]), "new masks every pass");
                Assert.IsTrue(prediction.MutualInformation.All(mi => mi > 1e-6));
            }
        }
    }
}
