using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tuners;
using Microsoft.ML.Peft.Vera;

namespace Microsoft.ML.Peft.Tests.Vera;

[TestClass]
public sealed class VeraTests
{
    /// <summary>q_proj 8→8, fc1 8→12, fc2 12→8 in 2 layers: shared A [4, 12], B [12, 4].</summary>
    private static VeraConfig Config(bool init = true, int key = 0) => new()
    {
        TargetModules = new[] { "q_proj", "fc1", "fc2" },
        Rank = 4,
        InitWeights = init,
        ProjectionPrngKey = key,
    };

    [TestMethod]
    public void TrainableCount_IsOutPlusRPerLayer_AndInitIsTheIdentityBitForBit()
    {
        var model = new TinyModel(new Generator(7));
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        long baseCount = model.Parameters().Sum(p => (long)p.Count);
        var peft = PeftModel.Inject(model, Config(), generator: new Generator(1));
        var (trainable, all) = peft.GetNumberOfTrainableParameters();
        Assert.AreEqual(2 * ((8 + 4) + (12 + 4) + (8 + 4)), trainable);
        Assert.AreEqual(baseCount + trainable, all, "the shared projections are buffers, not parameters");
        CollectionAssert.AreEqual(expected, model.Forward(x).ToArray(), "λ_b = 0 at init");
        var layer = (VeraLinear)model.GetModule("layers.1.mlp.fc1");
        Assert.IsTrue(layer.LambdaD("default").ToArray().All(v => v == 0.1f), "d_initial");
    }

    [TestMethod]
    public void Projections_AreSharedSizedToTheLargestLayer_KaimingBounded_AndReproducibleFromTheKey()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(), generator: new Generator(1));
        var layers = peft.TunerLayers().Select(t => (VeraLinear)t.Layer).ToList();
        var (a, b) = layers[0].SharedProjections("default");
        CollectionAssert.AreEqual(new[] { 4, 12 }, a.ShapeArray());
        CollectionAssert.AreEqual(new[] { 12, 4 }, b.ShapeArray());
        Assert.IsTrue(layers.All(l => ReferenceEquals(l.SharedProjections("default").A, a) && ReferenceEquals(l.SharedProjections("default").B, b)));
        Assert.IsFalse(a.RequiresGrad || b.RequiresGrad);
        Assert.IsTrue(a.ToArray().All(v => Math.Abs(v) <= Math.Sqrt(6.0 / 12)));
        Assert.IsTrue(b.ToArray().All(v => Math.Abs(v) <= Math.Sqrt(6.0 / 4)));
        Assert.IsTrue(a.ToArray().Max() > 0.5 * Math.Sqrt(6.0 / 12), "uses the whole range");
        var again = Config().CreateProjections(12, 12);
        CollectionAssert.AreEqual(a.ToArray(), again.A.ToArray());
        CollectionAssert.AreEqual(b.ToArray(), again.B.ToArray());
        CollectionAssert.AreNotEqual(a.ToArray(), Config(key: 1).CreateProjections(12, 12).A.ToArray());
    }

    [TestMethod]
    public void Forward_IsLambdaBTimesSlicedBTimesLambdaDTimesSlicedA_ByHandInDouble_AndOnlyTheVectorsLearn()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(init: false), generator: new Generator(1));
        var layer = (VeraLinear)model.GetModule("layers.0.mlp.fc2"); // 12 → 8: B is sliced to its first 8 rows
        using (Autograd.NoGrad()) layer.LambdaB("default").CopyFrom_(Tensor.Randn(new Generator(5), 8));
        var x = Tensor.Randn(new Generator(4), 2, 12);
        var y = layer.Forward(x).ToArray();
        var baseY = layer.Base.Forward(x).ToArray();
        var (sa, sb) = layer.SharedProjections("default");
        var a = sa.ToArray();
        var b = sb.ToArray();
        var d = layer.LambdaD("default").ToArray();
        var lb = layer.LambdaB("default").ToArray();
        var xs = x.ToArray();
        for (int row = 0; row < 2; row++)
        {
            for (int o = 0; o < 8; o++)
            {
                double delta = 0;
                for (int i = 0; i < 4; i++)
                {
                    double ax = 0;
                    for (int j = 0; j < 12; j++) ax += (double)a[i * 12 + j] * xs[row * 12 + j];
                    delta += b[o * 4 + i] * d[i] * ax;
                }
                Assert.AreEqual(baseY[row * 8 + o] + lb[o] * delta, y[row * 8 + o], 1e-5, $"y[{row}, {o}]");
            }
        }
        model.Forward(LoraFixtures.Input()).Sum().Backward();
        foreach (var (name, p) in model.NamedParameters())
        {
            bool vector = name.Contains(".vera_lambda_", StringComparison.Ordinal);
            Assert.AreEqual(vector, p.Grad is not null, name);
        }
        _ = peft;
    }

    [TestMethod]
    public void Merge_MatchesUnmergedWithin1e5_AndSaveLoadIsBitIdentical()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(key: 3), generator: new Generator(1));
        var noise = new Generator(8);
        using (Autograd.NoGrad())
        {
            // As after training: λ_b away from zero, λ_d away from d_initial.
            foreach (var (_, tuner) in peft.TunerLayers())
            {
                var layer = (VeraLinear)tuner;
                layer.LambdaB("default").CopyFrom_(Tensor.Randn(noise, layer.OutFeatures).Mul(0.2f));
                layer.LambdaD("default").Add_(Tensor.Randn(noise, 4).Mul(0.05f));
            }
        }
        var x = LoraFixtures.Input();
        var expected = model.Forward(x);
        var keys = peft.GetAdapterStateDict().Keys.ToList();
        CollectionAssert.Contains(keys, "base_model.model.layers.0.attn.q_proj.vera_lambda_b");
        CollectionAssert.Contains(keys, "base_model.model.layers.0.attn.q_proj.vera_lambda_d");
        string dir = Path.Combine(Path.GetTempPath(), "vera-" + Guid.NewGuid().ToString("N"));
        try
        {
            peft.SavePretrained(dir);
            var config = (VeraConfig)PeftConfig.Load(dir);
            Assert.AreEqual(3, config.ProjectionPrngKey);
            var fresh = new TinyModel(new Generator(7));
            PeftModel.FromPretrained(fresh, dir);
            CollectionAssert.AreEqual(expected.ToArray(), fresh.Forward(x).ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        peft.MergeAdapter();
        double diff = LoraFixtures.MaxAbsDiff(expected, model.Forward(x));
        Assert.IsTrue(diff <= 1e-5, $"merged output differs by {diff}");
    }

    [TestMethod]
    public void ConfigJson_HasPeftsDefaults()
    {
        var config = (VeraConfig)PeftConfig.FromJson("{\"peft_type\": \"VERA\", \"target_modules\": [\"q_proj\"]}");
        Assert.AreEqual((256, 0, true, 0.0, 0.1, true), (config.Rank, config.ProjectionPrngKey, config.SaveProjection, config.Dropout, config.DInitial, config.InitWeights));
        Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("{\"peft_type\": \"VERA\", \"bias\": \"all\"}"));
        Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("{\"peft_type\": \"VERA\", \"vera_dropout\": 1.0}"));
    }
}
