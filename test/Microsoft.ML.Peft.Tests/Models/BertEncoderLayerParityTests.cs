using Microsoft.ML.Peft.Models.Bert;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// One BERT encoder layer against Hugging Face's BertLayer (Fixtures/reference/layers/bert_encoder_layer, PyTorch 1.13):
/// the output and the gradient of loss = Σ output ⊙ R with respect to every parameter and to the input.
/// </summary>
[TestClass]
public sealed class BertEncoderLayerParityTests
{
    private static readonly BertConfig Config = new()
    {
        HiddenSize = 32, NumAttentionHeads = 4, IntermediateSize = 64, LayerNormEps = 1e-12, HiddenAct = "gelu", NumHiddenLayers = 1,
    };

    [TestMethod]
    public void ForwardAndEveryGradient_MatchPyTorch()
    {
        using var fx = ReferenceFixture.Open("layers/bert_encoder_layer.safetensors");
        var layer = new BertLayer(Config, new Generator(1));
        layer.Eval();
        var names = layer.NamedParameters().Select(p => p.Name).ToList();
        Assert.AreEqual(16, names.Count, "BertLayer has 16 parameters");
        layer.LoadStateDict(names.ToDictionary(n => n, fx.Float));

        using var scope = TensorScope.Begin();
        var x = fx.Float("input.hidden_states").RequiresGrad_();
        var keyMask = AttentionHelpers.AdditiveKeyMask(fx.Int("input.attention_mask"));
        Assert.IsNotNull(keyMask, "the fixture pads row 1");
        var y = layer.Forward(x, keyMask);
        Close.Assert(fx.Float("output.hidden_states"), y, "output.hidden_states");

        var loss = y.Mul(fx.Float("loss.projection")).Sum();
        Assert.AreEqual(fx.Floats("loss.value")[0], loss.Item(), 1e-4 + 1e-3 * Math.Abs(fx.Floats("loss.value")[0]), "loss");
        loss.Backward();
        foreach (string name in names)
        {
            var grad = layer.GetParameter(name).Grad;
            Assert.IsNotNull(grad, $"{name} received no gradient");
            Close.Assert(fx.Float("grad." + name), grad, "grad." + name);
        }
        Close.Assert(fx.Float("grad.input.hidden_states"), x.Grad!, "grad.input.hidden_states");
    }

    [TestMethod]
    public void ParameterNames_AreTheHuggingFaceKeys()
    {
        var layer = new BertLayer(Config, new Generator(1));
        string[] expected =
        [
            "attention.self.query.weight", "attention.self.query.bias", "attention.self.key.weight", "attention.self.key.bias",
            "attention.self.value.weight", "attention.self.value.bias", "attention.output.dense.weight", "attention.output.dense.bias",
            "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias", "intermediate.dense.weight", "intermediate.dense.bias",
            "output.dense.weight", "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias",
        ];
        CollectionAssert.AreEqual(expected, layer.NamedParameters().Select(p => p.Name).ToArray());
    }
}
