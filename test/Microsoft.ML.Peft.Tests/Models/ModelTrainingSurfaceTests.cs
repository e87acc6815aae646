using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// What the LoRA and trainer code rely on: swappable linear slots, gradients reaching every parameter (checked by
/// central finite differences through whole models), padding invariance of the classifier, and stories260K with a new
/// score head.
/// </summary>
[TestClass]
public sealed class ModelTrainingSurfaceTests
{
    [TestMethod]
    public void ReplacingALinearSlot_TakesEffectInTheForward()
    {
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Fixture("reference", "models", "bert"));
        const string path = "bert.encoder.layer.0.attention.self.value";
        int[] ids = [2, 40, 41, 7, 3];
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var before = model.Forward(ids, [1, 1, 1, 1, 1], null, 1, 5).ToArray();
        var original = (Linear)model.GetModule(path);
        model.ReplaceModule(path, new Scaled(original, 0.5f));
        var changed = model.Forward(ids, [1, 1, 1, 1, 1], null, 1, 5).ToArray();
        Assert.IsTrue(Close.MaxAbs(before, changed) > 1e-3, "the wrapper is used");
        model.ReplaceModule(path, original);
        CollectionAssert.AreEqual(before, model.Forward(ids, [1, 1, 1, 1, 1], null, 1, 5).ToArray());
    }

    [TestMethod]
    [DataRow("bert", "bert.embeddings.position_embeddings.weight", 2)]
    [DataRow("bert", "bert.embeddings.token_type_embeddings.weight", 1)]
    [DataRow("bert", "bert.pooler.dense.weight", 7)]
    [DataRow("bert", "classifier.bias", 1)]
    [DataRow("roberta", "roberta.embeddings.position_embeddings.weight", 69)]
    [DataRow("distilbert", "pre_classifier.weight", 11)]
    [DataRow("gpt2", "transformer.h.0.attn.c_attn.weight", 40)]
    [DataRow("gpt2", "transformer.wpe.weight", 33)]
    [DataRow("gpt_neox", "gpt_neox.layers.1.attention.query_key_value.bias", 70)]
    [DataRow("llama_gqa", "model.layers.0.self_attn.k_proj.weight", 5)]
    [DataRow("qwen2", "score.weight", 2)]
    public void ParameterGradient_MatchesCentralFiniteDifferences(string arch, string parameter, int element)
    {
        bool encoder = arch is "bert" or "roberta" or "distilbert";
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Fixture("reference", "models", arch, encoder ? "" : "sequence_classification"));
        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        var ids = fx.Int("right_padding.input_ids");
        var mask = fx.Int("right_padding.attention_mask");
        var types = fx.Has("right_padding.token_type_ids") ? fx.Int("right_padding.token_type_ids") : null;
        var targets = Tensor.FromInt32([2, 0], 2);
        float Loss() => model.Forward(ids, mask, types).CrossEntropy(targets).Item();

        var p = model.GetParameter(parameter);
        float analytic;
        using (TensorScope.Begin())
        {
            model.Forward(ids, mask, types).CrossEntropy(targets).Backward();
            analytic = p.Grad!.ToArray()[element];
        }
        const float eps = 1e-2f;
        double numeric;
        using (TensorScope.Begin())
        using (Autograd.NoGrad())
        {
            var span = p.AsSpan<float>();
            float original = span[element];
            span[element] = original + eps;
            double up = Loss();
            span[element] = original - eps;
            double down = Loss();
            span[element] = original;
            numeric = (up - down) / (2 * eps);
        }
        Assert.IsTrue(Math.Abs(numeric) > 1e-4, $"choose an element with a visible gradient ({numeric})");
        Assert.AreEqual(numeric, analytic, 2e-3 + 2e-2 * Math.Abs(numeric), $"{arch} d loss / d {parameter}[{element}]");
    }

    [TestMethod]
    public void Stories260KClassifier_InitialisesScore_AndIgnoresRightPadding()
    {
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Stories260K, numLabels: 2);
        CollectionAssert.AreEqual(new[] { "score.weight" }, model.LoadReport!.InitializedParameters.ToArray());
        Assert.AreEqual(64, model.HiddenSize);
        int[] a = [1, 403, 407, 261, 378], b = [1, 291, 280];
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var alone = model.Forward(b, [1, 1, 1], null, 1, 3).ToArray();
        // pad_token_id is null for stories260K: the last token with attention_mask = 1 is classified.
        var batched = model.Forward([.. a, .. b, 0, 0], [1, 1, 1, 1, 1, 1, 1, 1, 0, 0], null, 2, 5).ToArray();
        Close.Assert(alone, batched.AsSpan(2, 2), "right-padded row vs alone", atol: 1e-5, rtol: 1e-5);
        Close.Assert(model.Forward(a, [1, 1, 1, 1, 1], null, 1, 5).ToArray(), batched.AsSpan(0, 2), "unpadded row", atol: 1e-5, rtol: 1e-5);
    }

    [TestMethod]
    public void BadForwardInput_IsRejectedWithItsName()
    {
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Fixture("reference", "models", "bert"));
        var e = Assert.Throws<ArgumentException>(() => model.Forward([1, 2, 3], [1, 1], null, 1, 3));
        StringAssert.Contains(e.Message, "attentionMask has 2 values but batch 1 × seq 3");
        e = Assert.Throws<ArgumentException>(() => model.Forward(new int[65], new int[65], null, 1, 65));
        StringAssert.Contains(e.Message, "max_position_embeddings = 64");
    }

    /// <summary>A stand-in for a PEFT wrapper: the wrapped layer's output times a constant.</summary>
    private sealed class Scaled(LinearLayer inner, float factor) : LinearLayer
    {
        public override int InFeatures => inner.InFeatures;

        public override int OutFeatures => inner.OutFeatures;

        public override Tensor Forward(Tensor input) => inner.Forward(input).Mul(factor);
    }
}
