using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>LoRA (Lora/) on top of 4-bit base layers: training gradients, and the dequantize → merge → re-quantize path.</summary>
[TestClass]
public sealed class QLoraWithLoraTests
{
    private sealed class Mlp : Module
    {
        private readonly ModuleSlot<LinearLayer> up, down, head;

        public Mlp(Generator g)
        {
            up = RegisterModule<LinearLayer>("up_proj", new Linear(24, 40, g));
            down = RegisterModule<LinearLayer>("down_proj", new Linear(40, 24, g));
            head = RegisterModule<LinearLayer>("lm_head", new Linear(24, 10, g));
        }

        public Tensor Forward(Tensor x) => head.Module.Forward(down.Module.Forward(up.Module.Forward(x).Relu()));
    }

    [TestMethod]
    public void TrainableParameterCount_CountsTheFourBitWeightsUnpacked_AsPeftDoes()
    {
        // PEFT counts bitsandbytes' Params4bit at their unpacked size, so QLoRA prints the float model's "all params".
        var config = new LoraConfig { Rank = 4, Alpha = 8, TargetModules = new[] { "up_proj", "down_proj" } };
        var floatModel = PeftModel.Inject(new Mlp(new Generator(1)), config);
        var quantized = new Mlp(new Generator(1));
        QuantizedModel.QuantizeLinearLayers(quantized, new QuantizationOptions());
        var qlora = PeftModel.Inject(quantized, config);

        long lora = 4 * (24 + 40) + 4 * (40 + 24);
        long bases = (24 * 40 + 40) + (40 * 24 + 24) + (24 * 10 + 10);
        Assert.AreEqual((lora, bases + lora), floatModel.GetNumberOfTrainableParameters());
        Assert.AreEqual((lora, bases + lora), qlora.GetNumberOfTrainableParameters(), "4-bit weights unpacked; biases stay parameters");
        Assert.AreEqual(floatModel.TrainableParametersSummary(), qlora.TrainableParametersSummary());
    }

    [TestMethod]
    public void LoraOnQuantizedBase_Trains_ThenMergesAndRequantizes()
    {
        var g = new Generator(1);
        var model = new Mlp(g);
        var options = new QuantizationOptions { DoubleQuant = false };
        QuantizedModel.QuantizeLinearLayers(model, options);
        model.SetRequiresGrad(false);
        var targets = LoraInjector.Inject(model, new LoraConfig { Rank = 4, Alpha = 8, TargetModules = new[] { "up_proj", "down_proj" } }, "default", g);
        Assert.AreEqual(2, targets.Count);
        var loras = targets.Select(name => (Name: name, Layer: (LoraLinear)model.GetModule(name))).ToList();
        Assert.IsInstanceOfType<QuantizedLinear>(loras[0].Layer.Base);
        foreach (var (_, lora) in loras) lora.SetActiveAdapters(["default"], trainable: true);
        using (Autograd.NoGrad())
        {
            foreach (var (_, lora) in loras) lora.LoraB("default").Uniform_(g, -0.2f, 0.2f);
        }

        // Training: gradients reach both LoRA matrices through the 4-bit layers; the frozen base gets none.
        var x = Tensor.Randn(new Generator(2), 6, 24);
        using (TensorScope.Begin())
        {
            model.Forward(x).Mul(model.Forward(x)).Sum().Backward();
        }
        foreach (var (name, p) in model.NamedParameters().Where(p => p.Parameter.RequiresGrad))
        {
            Assert.IsTrue(name.Contains("lora_", StringComparison.Ordinal), name);
            Assert.IsTrue(p.Grad!.ToArray().Any(v => v != 0f), $"{name} got a zero gradient");
        }

        // Dequantizing the bases (inside the LoRA wrappers) and merging changes the logits only by fp32 rounding.
        float mergeChange = QuantizedModel.MaxLogitChange(() => model.Forward(x), () =>
        {
            CollectionAssert.AreEqual(new[] { "up_proj.base_layer", "down_proj.base_layer" }, QuantizedModel.DequantizeLinearLayers(model).ToArray());
            foreach (var (name, lora) in loras)
            {
                lora.Merge();
                model.ReplaceModule(name, lora.Base);
            }
        });
        Assert.IsTrue(mergeChange < 1e-4f, $"merge changed logits by {mergeChange}");

        // Re-quantizing the merged weights moves the logits by the 4-bit error of the (now different) weights.
        float requantizeChange = QuantizedModel.MaxLogitChange(() => model.Forward(x), () =>
            CollectionAssert.AreEqual(new[] { "up_proj", "down_proj" }, QuantizedModel.QuantizeLinearLayers(model, options).ToArray()));
        Assert.IsTrue(requantizeChange is > 0f and < 0.5f, $"re-quantization changed logits by {requantizeChange}");
    }

    [TestMethod]
    public void QuantizeLinearLayers_LeavesLinearsInsideAdaptersAlone()
    {
        var g = new Generator(3);
        var model = new Mlp(g);
        LoraInjector.Inject(model, new LoraConfig { Rank = 2, TargetModules = new[] { "up_proj" } }, "default", g);
        var names = QuantizedModel.QuantizeLinearLayers(model);
        CollectionAssert.AreEqual(new[] { "down_proj" }, names.ToArray());
        Assert.IsInstanceOfType<Linear>(((LoraLinear)model.GetModule("up_proj")).Base);
    }
}
