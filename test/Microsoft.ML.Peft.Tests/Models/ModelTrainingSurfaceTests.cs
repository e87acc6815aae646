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
    [DataRow("bert", "attention_probs_dropout_prob", "hidden_dropout_prob", "")]
    [DataRow("distilbert", "attention_dropout", "dropout", "")]
    [DataRow("gpt2", "attn_pdrop", "resid_pdrop", "sequence_classification")]
    [DataRow("gpt_neox", "attention_dropout", "hidden_dropout", "sequence_classification")]
    [DataRow("llama_gqa", "attention_dropout", null, "sequence_classification")]
    public void TrainingMode_AppliesSeededDropout_IncludingOnAttentionProbabilities(string arch, string attentionField, string? hiddenField, string subfolder)
    {
        using var copies = new CheckpointCopies();
        // Only attention-probability dropout is on, so any train/eval difference comes from it.
        string attentionOnly = copies.Copy(arch, "attention", c =>
        {
            foreach (string field in new[] { "hidden_dropout_prob", "dropout", "resid_pdrop", "embd_pdrop", "hidden_dropout", "classifier_dropout", "seq_classif_dropout" })
            {
                if (c.ContainsKey(field)) c[field] = 0.0;
            }
            c[attentionField] = 0.5;
        }, fixtureSubfolder: subfolder);
        string none = copies.Copy(arch, "none", c =>
        {
            foreach (string? field in new[] { attentionField, hiddenField, "embd_pdrop", "classifier_dropout", "seq_classif_dropout" })
            {
                if (field is not null && c.ContainsKey(field)) c[field] = 0.0;
            }
            if (c.ContainsKey("summary_first_dropout")) c["summary_first_dropout"] = 0.0;
        }, fixtureSubfolder: subfolder);
        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        var ids = fx.Int("right_padding.input_ids");
        var mask = fx.Int("right_padding.attention_mask");
        float[] Run(string folder, bool train, ulong seed)
        {
            var model = PretrainedModel.LoadForSequenceClassification(folder, options: new ModelLoadOptions { Seed = seed });
            if (train) model.Train();
            using var scope = TensorScope.Begin();
            return model.Forward(ids, mask).ToArray();
        }
        var eval = Run(attentionOnly, false, 1);
        var train = Run(attentionOnly, true, 1);
        Assert.IsTrue(Close.MaxAbs(eval, train) > 1e-4, $"{arch}: attention dropout changes the training-mode output");
        CollectionAssert.AreEqual(train, Run(attentionOnly, true, 1), "same seed, same masks");
        Assert.IsTrue(Close.MaxAbs(train, Run(attentionOnly, true, 2)) > 1e-6, "another seed, other masks");
        CollectionAssert.AreEqual(Run(none, false, 1), Run(none, true, 1), "with every dropout at 0, training mode equals evaluation");
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
