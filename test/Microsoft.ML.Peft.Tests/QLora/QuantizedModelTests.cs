using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>In-place quantization of a module tree, dequantization and the logit-change report.</summary>
[TestClass]
public sealed class QuantizedModelTests
{
    private sealed class Block : Module
    {
        private readonly ModuleSlot<LinearLayer> up, down;

        public Block(Generator g)
        {
            up = RegisterModule<LinearLayer>("up_proj", new Linear(12, 20, g));
            down = RegisterModule<LinearLayer>("down_proj", new Linear(20, 12, g, hasBias: false));
        }

        public Tensor Forward(Tensor x) => down.Module.Forward(up.Module.Forward(x).Relu());
    }

    private sealed class TinyModel : Module
    {
        private readonly ModuleSlot<Embedding> embed;
        private readonly ModuleSlot<ModuleList<Block>> layers;
        private readonly ModuleSlot<LinearLayer> head;

        public TinyModel(Generator g)
        {
            embed = RegisterModule("embed_tokens", new Embedding(30, 12, g));
            layers = RegisterModule("layers", new ModuleList<Block>([new Block(g), new Block(g)]));
            head = RegisterModule<LinearLayer>("lm_head", new Linear(12, 30, g));
        }

        public Tensor Forward(Tensor ids)
        {
            var h = embed.Module.Forward(ids);
            for (int i = 0; i < layers.Module.Count; i++) h = layers.Module[i].Forward(h);
            return head.Module.Forward(h);
        }
    }

    [TestMethod]
    public void QuantizeLinearLayers_ReplacesAllButTheHead()
    {
        var model = new TinyModel(new Generator(1));
        var names = QuantizedModel.QuantizeLinearLayers(model, new QuantizationOptions { EmbeddingsToBFloat16 = true });
        CollectionAssert.AreEqual(new[] { "layers.0.up_proj", "layers.0.down_proj", "layers.1.up_proj", "layers.1.down_proj" }, names.ToArray());
        Assert.IsInstanceOfType<QuantizedLinear>(model.GetModule("layers.1.down_proj"));
        Assert.IsInstanceOfType<Linear>(model.GetModule("lm_head"));
        Assert.AreEqual(DType.BFloat16, model.GetParameter("embed_tokens.weight").DType);
        CollectionAssert.AreEqual(new[] { "lm_head.weight", "lm_head.bias" },
            model.NamedParameters().Where(p => p.Parameter.RequiresGrad).Select(p => p.Name).ToArray());
    }

    [TestMethod]
    public void MaxLogitChange_OfQuantization_EqualsDirectComparison_AndDequantizeIsExact()
    {
        var model = new TinyModel(new Generator(2));
        var ids = Tensor.FromInt32([1, 5, 7, 29, 0, 3], 2, 3);
        float[] before;
        using (Autograd.NoGrad()) before = model.Forward(ids).ToArray();
        var options = new QuantizationOptions { DoubleQuant = false };
        float change = QuantizedModel.MaxLogitChange(() => model.Forward(ids), () => QuantizedModel.QuantizeLinearLayers(model, options));
        float[] after;
        using (Autograd.NoGrad()) after = model.Forward(ids).ToArray();
        float expected = before.Zip(after, (a, b) => Math.Abs(a - b)).Max();
        Assert.AreEqual(expected, change);
        Assert.IsTrue(change > 0f && change < 0.5f, $"change {change}");

        // With fp32 scales, dequantizing then re-quantizing reproduces the same codes and scales (each block's absmax
        // element decodes to ±1·absmax exactly), so the logits do not move at all. (Double quantization re-derives
        // its offset from the decoded scales, so it is only close, not exact.)
        float roundTrip = QuantizedModel.MaxLogitChange(() => model.Forward(ids), () =>
        {
            Assert.AreEqual(4, QuantizedModel.DequantizeLinearLayers(model).Count);
            QuantizedModel.QuantizeLinearLayers(model, options);
        });
        Assert.AreEqual(0f, roundTrip);
    }
}
