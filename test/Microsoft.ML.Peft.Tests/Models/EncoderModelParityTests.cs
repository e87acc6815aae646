using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Bert;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// Tiny random BERT / RoBERTa / DistilBERT checkpoints (Fixtures/reference/models/&lt;arch&gt;, written by
/// build/reference/models_reference.py with PyTorch 1.13) loaded through <see cref="PretrainedModel.Load"/>: every
/// hidden state and the outputs of both heads against the reference, within 1e-4 absolute / 1e-3 relative.
/// </summary>
[TestClass]
public sealed class EncoderModelParityTests
{
    [TestMethod]
    [DataRow("bert")]
    [DataRow("roberta")]
    [DataRow("distilbert")]
    public void SequenceClassification_HiddenStatesAndLogits_MatchPyTorch(string arch)
    {
        var model = (SequenceClassificationModel)PretrainedModel.Load(TestPaths.Fixture("reference", "models", arch));
        Assert.AreEqual(ModelTask.SequenceClassification, model.Task, "task from config.json architectures");
        Assert.AreEqual(3, model.NumLabels);
        var report = model.LoadReport!;
        Assert.AreEqual(0, report.InitializedParameters.Count, "nothing to initialise: " + string.Join(", ", report.InitializedParameters));
        Assert.AreEqual(0, report.UnexpectedKeys.Count, "unexpected: " + string.Join(", ", report.UnexpectedKeys));
        Assert.AreEqual(model.NamedParameters().Count(), report.ZeroCopyParameters, "float32 weights are viewed in place");

        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = fx.Int("right_padding.input_ids");
        var mask = fx.Int("right_padding.attention_mask");
        var types = fx.Has("right_padding.token_type_ids") ? fx.Int("right_padding.token_type_ids") : null;

        var hidden = new List<Tensor>();
        var last = ((EncoderModel)model.Backbone).Forward(ids, mask, types, hiddenStates: hidden);
        Assert.AreEqual(3, hidden.Count, "embeddings + 2 layers");
        Close.Assert(fx.Float("right_padding.embeddings_output"), hidden[0], $"{arch} embeddings_output");
        Close.Assert(fx.Float("right_padding.layer_outputs.0"), hidden[1], $"{arch} layer_outputs.0");
        Close.Assert(fx.Float("right_padding.layer_outputs.1"), hidden[2], $"{arch} layer_outputs.1");
        Close.Assert(fx.Float("right_padding.last_hidden_state"), last, $"{arch} last_hidden_state");
        if (model is BertForSequenceClassification bert)
            Close.Assert(fx.Float("right_padding.pooler_output"), bert.Bert.Pool(last), "bert pooler_output");

        Close.Assert(fx.Float("right_padding.sequence_classification.logits"), model.Forward(ids, mask, types), $"{arch} sequence_classification.logits");

        // The trainer's array overload gives the same logits.
        var logits = model.Forward(fx.Ints("right_padding.input_ids"), fx.Ints("right_padding.attention_mask"),
            types is null ? null : fx.Ints("right_padding.token_type_ids"), ids.Size(0), ids.Size(1));
        Close.Assert(fx.Float("right_padding.sequence_classification.logits"), logits, $"{arch} logits via int[] overload");
    }

    [TestMethod]
    [DataRow("bert")]
    [DataRow("roberta")]
    [DataRow("distilbert")]
    public void TokenClassification_Logits_MatchPyTorch(string arch)
    {
        var model = (TokenClassificationModel)PretrainedModel.Load(TestPaths.Fixture("reference", "models", arch, "token_classification"));
        Assert.AreEqual(5, model.NumLabels);
        Assert.AreEqual(0, model.LoadReport!.InitializedParameters.Count);
        Assert.AreEqual(0, model.LoadReport.UnexpectedKeys.Count, string.Join(", ", model.LoadReport.UnexpectedKeys));
        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var types = fx.Has("right_padding.token_type_ids") ? fx.Int("right_padding.token_type_ids") : null;
        var logits = model.Forward(fx.Int("right_padding.input_ids"), fx.Int("right_padding.attention_mask"), types);
        Close.Assert(fx.Float("right_padding.token_classification.logits"), logits, $"{arch} token_classification.logits");
    }

    [TestMethod]
    public void ModuleNames_AreCheckpointKeys_AndHeadsAreNamed()
    {
        var bert = (BertForSequenceClassification)PretrainedModel.Load(TestPaths.Fixture("reference", "models", "bert"));
        Assert.IsInstanceOfType<Linear>(bert.GetModule("bert.encoder.layer.1.attention.self.query"));
        Assert.IsInstanceOfType<Linear>(bert.GetModule("bert.encoder.layer.0.output.dense"));
        CollectionAssert.AreEqual(new[] { "classifier" }, bert.ClassifierHeadNames.ToArray());
        Assert.IsTrue(bert.UsesTokenTypeIds);

        var distil = (SequenceClassificationModel)PretrainedModel.Load(TestPaths.Fixture("reference", "models", "distilbert"));
        foreach (string name in new[] { "q_lin", "k_lin", "v_lin", "out_lin" })
            Assert.IsInstanceOfType<Linear>(distil.GetModule("distilbert.transformer.layer.0.attention." + name));
        Assert.IsInstanceOfType<Linear>(distil.GetModule("distilbert.transformer.layer.1.ffn.lin2"));
        CollectionAssert.AreEqual(new[] { "pre_classifier", "classifier" }, distil.ClassifierHeadNames.ToArray());

        var roberta = (SequenceClassificationModel)PretrainedModel.Load(TestPaths.Fixture("reference", "models", "roberta"));
        Assert.IsInstanceOfType<Linear>(roberta.GetModule("classifier.out_proj"));
        Assert.IsFalse(roberta.UsesTokenTypeIds, "RoBERTa has a single token type");
    }
}
