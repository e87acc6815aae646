using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// Decoder *ForTokenClassification (Llama/Qwen2 head <c>score</c>, GPT-2/GPT-NeoX head <c>classifier</c>, both with
/// bias) on the tiny random checkpoints: per-token logits against plain PyTorch
/// (build/reference/models_reference.py → Fixtures/reference/models/&lt;arch&gt;/expected_token_classification.safetensors),
/// right and left padding, at real tokens, within 1e-4 absolute.
/// </summary>
[TestClass]
public sealed class DecoderTokenClassificationTests
{
    private const int Labels = 5;

    [TestMethod]
    [DataRow("gpt2", "right_padding")]
    [DataRow("gpt2", "left_padding")]
    [DataRow("gpt_neox", "right_padding")]
    [DataRow("gpt_neox", "left_padding")]
    [DataRow("llama_gqa", "right_padding")]
    [DataRow("llama_gqa", "left_padding")]
    [DataRow("qwen2", "right_padding")]
    [DataRow("qwen2", "left_padding")]
    public void Logits_MatchPyTorch_AtRealTokens(string arch, string variant)
    {
        // The task comes from config.json's "architectures" (e.g. LlamaForTokenClassification).
        var model = (DecoderForTokenClassification)PretrainedModel.Load(TestPaths.Fixture("reference", "models", arch, "token_classification"));
        Assert.AreEqual(ModelTask.TokenClassification, model.Task);
        Assert.AreEqual(Labels, model.NumLabels);
        Assert.AreEqual(0, model.LoadReport!.InitializedParameters.Count, string.Join(", ", model.LoadReport.InitializedParameters));
        Assert.AreEqual(0, model.LoadReport.UnexpectedKeys.Count, string.Join(", ", model.LoadReport.UnexpectedKeys));

        using var tokens = ReferenceFixture.Open($"models/{arch}/expected_token_classification.safetensors");
        using var backbone = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        // Same padded batch as the backbone fixture, so the hidden states under the head are the ones checked there.
        CollectionAssert.AreEqual(backbone.Ints($"{variant}.input_ids"), tokens.Ints($"{variant}.input_ids"));
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var mask = tokens.Ints($"{variant}.attention_mask");
        var logits = model.Forward(tokens.Int($"{variant}.input_ids"), tokens.Int($"{variant}.attention_mask"));
        CollectionAssert.AreEqual(new[] { 2, 9, Labels }, logits.ShapeArray());
        Close.Assert(tokens.Float($"{variant}.token_classification.logits"), logits, $"{arch} {variant} token_classification.logits",
            atol: 1e-4, rtol: 0, where: i => mask[i / Labels] == 1);
    }

    [TestMethod]
    [DataRow("gpt2", "transformer", "classifier")]
    [DataRow("gpt_neox", "gpt_neox", "classifier")]
    [DataRow("llama_gqa", "model", "score")]
    [DataRow("qwen2", "model", "score")]
    public void LoadForTokenClassification_FromCausalLMCheckpoint_InitialisesTheHfNamedHead(string arch, string prefix, string head)
    {
        var model = PretrainedModel.LoadForTokenClassification(TestPaths.Fixture("reference", "models", arch), numLabels: 7);
        Assert.IsInstanceOfType<DecoderForTokenClassification>(model);
        Assert.AreEqual(7, model.NumLabels);
        Assert.AreEqual(prefix, model.BackbonePrefix);
        Assert.IsFalse(model.UsesTokenTypeIds);
        CollectionAssert.AreEqual(new[] { head }, model.HeadModuleNames.ToArray());
        CollectionAssert.AreEquivalent(new[] { $"{head}.weight", $"{head}.bias" }, model.LoadReport!.InitializedParameters.ToArray());
        var linear = (LinearLayer)model.GetModule(head);
        Assert.AreEqual(model.HiddenSize, linear.InFeatures);
        Assert.AreEqual(7, linear.OutFeatures);

        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var logits = model.Forward(Tensor.FromInt32([5, 6, 7, 8], 1, 4));
        CollectionAssert.AreEqual(new[] { 1, 4, 7 }, logits.ShapeArray());
    }

    [TestMethod]
    public void Dropout_BeforeTheHead_ActsOnlyInTrainingMode()
    {
        // GPT-NeoX's config sets classifier_dropout 0.1: training mode must change some logits, evaluation mode none.
        var model = PretrainedModel.LoadForTokenClassification(TestPaths.Fixture("reference", "models", "gpt_neox", "token_classification"));
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = Tensor.FromInt32([5, 6, 7, 8, 9, 10, 11, 12], 2, 4);
        float[] eval1 = model.Forward(ids).ToArray(), eval2 = model.Forward(ids).ToArray();
        CollectionAssert.AreEqual(eval1, eval2);
        model.Train();
        float[] train = model.Forward(ids).ToArray();
        model.Eval();
        Assert.IsTrue(Close.MaxAbs(eval1, train) > 1e-3, "dropout had no effect in training mode");
    }
}
