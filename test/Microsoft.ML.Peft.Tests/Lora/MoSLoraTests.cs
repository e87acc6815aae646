using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>MoSLoRA (lora_use_mixer): the r×r mixer between A and B.</summary>
[TestClass]
public sealed class MoSLoraTests
{
    private static LoraConfig Config(MoSLoraMixerInit init = MoSLoraMixerInit.KaimingUniform, LoraInit? loraInit = null) => new()
    {
        TargetModules = new[] { "q_proj", "fc1" },
        Rank = 3,
        Alpha = 6,
        UseMixer = true,
        MixerInit = init,
        InitLoraWeights = loraInit ?? LoraInit.Default,
    };

    [TestMethod]
    public void TrainableCount_IsLoraPlusRSquaredPerLayer_AndInitIsTheIdentityBitForBit()
    {
        var model = new TinyModel(new Generator(7));
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        var peft = PeftModel.Inject(model, Config(), generator: new Generator(1));
        // 2 layers × (q_proj 8→8: 3·(8 + 8) + 9, fc1 8→12: 3·(8 + 12) + 9).
        Assert.AreEqual(2 * ((48 + 9) + (60 + 9)), peft.GetNumberOfTrainableParameters().Trainable);
        CollectionAssert.AreEqual(expected, model.Forward(x).ToArray(), "B = 0: the adapter starts as a no-op whatever the mixer");
    }

    [TestMethod]
    public void Forward_IsScalingTimesBMixA_ComputedByHandInDouble_AndGradientsReachTheMixer()
    {
        var g = new Generator(3);
        var layer = new LoraLinear(new Linear(5, 4, g));
        layer.Base.SetRequiresGrad(false);
        layer.UpdateLayer("default", 3, 6, 0, false, LoraInit.Random, g, mixerInit: MoSLoraMixerInit.KaimingUniform);
        layer.SetActiveAdapters(["default"], trainable: true);
        var x = Tensor.Randn(new Generator(4), 2, 5);
        var y = layer.Forward(x);
        var w = ((Linear)layer.Base).Weight.ToArray();
        var bias = ((Linear)layer.Base).Bias!.ToArray();
        var a = layer.LoraA("default").ToArray();
        var b = layer.LoraB("default").ToArray();
        var m = layer.Mixer("default").ToArray();
        var xs = x.ToArray();
        var ys = y.ToArray();
        for (int row = 0; row < 2; row++)
        {
            var ax = new double[3];
            for (int i = 0; i < 3; i++)
            {
                for (int j = 0; j < 5; j++) ax[i] += (double)a[i * 5 + j] * xs[row * 5 + j];
            }
            var max = new double[3];
            for (int i = 0; i < 3; i++)
            {
                for (int k = 0; k < 3; k++) max[i] += (double)m[i * 3 + k] * ax[k];
            }
            for (int o = 0; o < 4; o++)
            {
                double expected = bias[o];
                for (int j = 0; j < 5; j++) expected += (double)w[o * 5 + j] * xs[row * 5 + j];
                for (int i = 0; i < 3; i++) expected += 2.0 * b[o * 3 + i] * max[i];
                Assert.AreEqual(expected, ys[row * 4 + o], 1e-5, $"y[{row}, {o}]");
            }
        }
        y.Sum().Backward();
        Assert.IsTrue(layer.Mixer("default").Grad!.ToArray().Any(v => v != 0), "the mixer is trained");
        Assert.IsNull(((Linear)layer.Base).Weight.Grad, "the base stays frozen");
        float bound = 1f / MathF.Sqrt(3);
        Assert.IsTrue(m.All(v => Math.Abs(v) <= bound), "Kaiming-uniform (a = √5): U(−1/√r, 1/√r)");
    }

    [TestMethod]
    public void OrthogonalInit_GivesMTransposeMEqualToIdentity()
    {
        var layer = new LoraLinear(new Linear(6, 6, new Generator(1)));
        layer.UpdateLayer("default", 5, 5, 0, false, LoraInit.Default, new Generator(2), mixerInit: MoSLoraMixerInit.Orthogonal);
        var m = layer.Mixer("default").ToArray();
        for (int i = 0; i < 5; i++)
        {
            for (int j = 0; j < 5; j++)
            {
                double dot = 0;
                for (int k = 0; k < 5; k++) dot += (double)m[k * 5 + i] * m[k * 5 + j];
                Assert.AreEqual(i == j ? 1.0 : 0.0, dot, 1e-6, $"(MᵀM)[{i}, {j}]");
            }
        }
    }

    [TestMethod]
    public void Merge_MatchesUnmergedWithin1e5_AndUnmergeRestores()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(MoSLoraMixerInit.Orthogonal, LoraInit.Random), generator: new Generator(1));
        var x = LoraFixtures.Input();
        var unmerged = model.Forward(x);
        var weight = model.GetParameter("layers.0.mlp.fc1.base_layer.weight").ToArray();
        peft.MergeAdapter();
        double diff = LoraFixtures.MaxAbsDiff(unmerged, model.Forward(x));
        Assert.IsTrue(diff <= 1e-5, $"merged output differs by {diff}");
        peft.UnmergeAdapter();
        var restored = model.GetParameter("layers.0.mlp.fc1.base_layer.weight").ToArray();
        for (int i = 0; i < weight.Length; i++) Assert.AreEqual(weight[i], restored[i], 1e-6);
    }

    [TestMethod]
    public void SaveLoad_WritesTheMixerAndItsConfig_AndReproducesOutputsBitForBit()
    {
        var model = new TinyModel(new Generator(7));
        var peft = PeftModel.Inject(model, Config(loraInit: LoraInit.Random), generator: new Generator(1));
        var x = LoraFixtures.Input();
        var expected = model.Forward(x).ToArray();
        CollectionAssert.Contains(peft.GetAdapterStateDict().Keys.ToList(), "base_model.model.layers.1.mlp.fc1.lora_AB.weight");
        string dir = Path.Combine(Path.GetTempPath(), "moslora-" + Guid.NewGuid().ToString("N"));
        try
        {
            peft.SavePretrained(dir);
            string json = File.ReadAllText(Path.Combine(dir, "adapter_config.json"));
            StringAssert.Contains(json, "\"lora_use_mixer\": true");
            StringAssert.Contains(json, "\"lora_mixer_init\": \"kaiming\"");
            var fresh = new TinyModel(new Generator(7));
            PeftModel.FromPretrained(fresh, dir);
            CollectionAssert.AreEqual(expected, fresh.Forward(x).ToArray());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
        Assert.IsFalse(new LoraConfig().ToJson().Contains("lora_use_mixer", StringComparison.Ordinal), "plain LoRA files stay PEFT's");
    }
}
