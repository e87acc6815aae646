using Microsoft.ML.Peft.Ensembles;
using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Ensembles;

/// <summary>The joint-training plumbing of <see cref="ParticleSet"/> (what the training loop calls per step).</summary>
[TestClass]
public sealed class ParticleSetTests
{
    private static readonly LoraConfig Config = new()
    {
        TargetModules = new[] { "q_proj", "fc1" }, Rank = 2, Alpha = 4, ModulesToSave = ["classifier"], InitLoraWeights = LoraInit.Random,
    };

    private static (TinyModel Model, PeftModel Peft) TwoAdapters(LoraConfig config)
    {
        var model = new TinyModel(new Generator(1));
        var peft = PeftModel.Inject(model, config, "default", new Generator(5));
        peft.AddAdapter("member_1", config.Clone());
        return (model, peft);
    }

    private static double[] Flatten(IEnumerable<Tensor> tensors, bool gradient) =>
        tensors.SelectMany(t => (gradient ? t.Grad!.ToArray() : t.ToArray()).Select(v => (double)v)).ToArray();

    /// <summary>
    /// After each particle's backward, PrepareStep leaves in every gradient the Stein direction that
    /// <see cref="SvgdKernel.Directions"/> gives for the particles' flattened weights and gradients (rounded to float).
    /// </summary>
    [TestMethod]
    public void PrepareStep_WritesTheSteinDirectionsIntoTheGradients()
    {
        var (model, peft) = TwoAdapters(Config);
        var own = new List<Tensor[]>();
        foreach (var name in new[] { "default", "member_1" })
        {
            peft.SetAdapter(name);
            own.Add(peft.TrainableParameters().Select(p => p.Parameter).ToArray());
        }
        var particles = new ParticleSet(peft, ["default", "member_1"], repulsive: true, repulsionScale: 0.05, bandwidth: null);
        var x = Tensor.Randn(new Generator(9), 6, 8);
        var labels = Tensor.From([0f, 1f, 2f, 1f, 0f, 2f], 6).To(DType.Int32);
        for (int i = 0; i < 2; i++)
        {
            particles.Activate(i);
            model.Forward(x).CrossEntropy(labels).Backward();
        }
        particles.Activate(0);
        var theta = own.Select(ps => Flatten(ps, gradient: false)).ToList();
        var gradients = own.Select(ps => Flatten(ps, gradient: true)).ToList();
        Assert.IsTrue(gradients.All(g => g.Any(v => v != 0)), "each particle got its own gradient");
        var expected = new double[2][];
        double h = SvgdKernel.Directions(theta, gradients, 0.05, expected);

        var order = own[1].Concat(own[0]).ToList();   // any optimizer order
        particles.PrepareStep(order, maxNorm: null);
        Assert.AreEqual(h, particles.LastBandwidth);
        for (int i = 0; i < 2; i++)
        {
            var actual = Flatten(own[i], gradient: true);
            for (int e = 0; e < actual.Length; e++) Assert.AreEqual((float)expected[i][e], (float)actual[e], $"particle {i} entry {e}");
        }
    }

    /// <summary>Independent members are clipped each by its own norm (a deep ensemble member clips as it would alone).</summary>
    [TestMethod]
    public void PrepareStep_ClipsEachParticleByItsOwnNorm()
    {
        var (model, peft) = TwoAdapters(Config);
        var own = new List<Tensor[]>();
        foreach (var name in new[] { "default", "member_1" })
        {
            peft.SetAdapter(name);
            own.Add(peft.TrainableParameters().Select(p => p.Parameter).ToArray());
        }
        var particles = new ParticleSet(peft, ["default", "member_1"], repulsive: false, repulsionScale: 0, bandwidth: null);
        var x = Tensor.Randn(new Generator(9), 6, 8);
        var labels = Tensor.From([0f, 1f, 2f, 1f, 0f, 2f], 6).To(DType.Int32);
        double squares = 0;
        for (int i = 0; i < 2; i++)
        {
            particles.Activate(i);
            model.Forward(x).CrossEntropy(labels).Mul(i + 1).Backward();   // different norms
        }
        var norms = own.Select(GradientClipping.GlobalNorm).ToArray();
        foreach (double n in norms) squares += n * n;
        Assert.IsTrue(norms.All(n => n > 1e-3));
        double reported = particles.PrepareStep(own[0].Concat(own[1]), maxNorm: 1e-3);
        Assert.AreEqual(Math.Sqrt(squares / 2), reported, 1e-12, "root mean square of the particles' norms");
        foreach (var ps in own) Assert.AreEqual(1e-3, GradientClipping.GlobalNorm(ps), 1e-6, "each particle clipped to the threshold");
    }

    [TestMethod]
    public void ParticlesSharingATensor_AreRejected()
    {
        var config = (LoraConfig)Config.Clone();
        config.Bias = LoraBias.All;
        var (_, peft) = TwoAdapters(config);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => new ParticleSet(peft, ["default", "member_1"], true, 0.1, null));
        StringAssert.Contains(ex.Message, "share");
    }
}
