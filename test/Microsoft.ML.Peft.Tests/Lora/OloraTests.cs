using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Lora;

/// <summary>
/// OLoRA against build/reference/lora_variants_reference.py (Fixtures/lora/olora_linear.*: PEFT's olora_init with
/// torch.linalg.qr) on tall, wide and square base weights; identity at init; the config value round-trips.
/// </summary>
[TestClass]
public sealed class OloraTests
{
    [TestMethod]
    [DataRow("tall", 3, 6.0)]
    [DataRow("wide", 3, 6.0)]
    [DataRow("square", 4, 2.0)]
    public void Init_GivesPyTorchsQrFactors_AndResidual_AndTheSameOutput(string name, int rank, double alpha)
    {
        var f = LoraFixtures.Load("olora_linear.safetensors");
        var layer = new LoraLinear(new Linear(f[$"{name}.weight"].Clone()));
        layer.UpdateLayer("default", rank, alpha, 0, false, LoraInit.Olora, new Generator(1));
        layer.SetActiveAdapters(["default"], trainable: true);
        LoraFixtures.AssertClose(f[$"{name}.lora_A"], layer.LoraA("default"), 1e-5, 1e-5, $"{name} A = R[:r]");
        LoraFixtures.AssertClose(f[$"{name}.lora_B"], layer.LoraB("default"), 1e-5, 1e-5, $"{name} B = Q[:, :r]");
        LoraFixtures.AssertClose(f[$"{name}.residual"], ((Linear)layer.Base).Weight, 1e-5, 1e-5, $"{name} residual weight");
        var x = f[$"{name}.input"];
        LoraFixtures.AssertClose(f[$"{name}.output"], layer.Forward(x), 1e-5, 1e-5, $"{name} output");
        // Identity at init: the adapted layer computes the original base layer.
        LoraFixtures.AssertClose(new Linear(f[$"{name}.weight"].Clone()).Forward(x), layer.Forward(x), 2e-5, 1e-5, $"{name} identity at init");
    }

    [TestMethod]
    public void BFactor_HasOrthonormalColumns_AndAIsUpperTrapezoidal()
    {
        var g = new Generator(8);
        var layer = new LoraLinear(new Linear(9, 13, g));
        layer.UpdateLayer("default", 5, 10, 0, false, LoraInit.Olora, g);
        var b = layer.LoraB("default").ToArray();
        var a = layer.LoraA("default").ToArray();
        for (int i = 0; i < 5; i++)
        {
            for (int j = 0; j < 5; j++)
            {
                double dot = 0;
                for (int row = 0; row < 13; row++) dot += (double)b[row * 5 + i] * b[row * 5 + j];
                Assert.AreEqual(i == j ? 1.0 : 0.0, dot, 1e-6, $"BᵀB[{i}, {j}]");
            }
            for (int col = 0; col < i; col++) Assert.AreEqual(0f, a[i * 9 + col], $"A[{i}, {col}] below the diagonal");
        }
    }

    [TestMethod]
    public void RankAboveMinDimension_IsRejectedWithTheShape()
    {
        var layer = new LoraLinear(new Linear(4, 3, new Generator(6)));
        var e = Assert.ThrowsExactly<ArgumentException>(() => layer.UpdateLayer("default", 4, 8, 0, false, LoraInit.Olora, new Generator(1)));
        StringAssert.Contains(e.Message, "rank 4 exceeds min(out, in) = 3");
    }

    [TestMethod]
    public void ConfigValue_RoundTripsAsOlora()
    {
        var config = (LoraConfig)PeftConfig.FromJson("""{"peft_type": "LORA", "r": 4, "target_modules": ["q"], "init_lora_weights": "olora"}""");
        Assert.AreEqual(LoraInitKind.Olora, config.InitLoraWeights.Kind);
        StringAssert.Contains(config.ToJson(), "\"init_lora_weights\": \"olora\"");
    }
}
