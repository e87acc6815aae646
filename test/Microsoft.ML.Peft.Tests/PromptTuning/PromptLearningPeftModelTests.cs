using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.PTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.PromptTuning;

/// <summary>
/// Prompt tuning and P-tuning through <see cref="PeftModel"/> on every architecture: parameter formulas, decoder
/// classification still pooling the last real token behind the virtual ones, IInputEmbeddingsModel on the real models,
/// disabling the adapter, and P-tuning's encoder replaced by its table on save → load, bit for bit.
/// </summary>
[TestClass]
public sealed class PromptLearningPeftModelTests
{
    private static string Tiny(string arch, string sub = "") => TestPaths.Fixture("reference", "models", arch, sub);

    [TestMethod]
    [DataRow("llama_gqa", "sequence_classification", 32, "score", false)]
    [DataRow("gpt2", "sequence_classification", 32, "score", false)]
    [DataRow("gpt_neox", "sequence_classification", 32, "score", false)]
    [DataRow("bert", "", 32, "classifier", true)]
    [DataRow("roberta", "", 32, "classifier", true)]
    [DataRow("distilbert", "", 32, "classifier", true)]
    public void PromptTuning_CountsPromptPlusHead_AndDecodersPoolTheLastRealToken(string arch, string sub, int hidden, string head, bool encoder)
    {
        var model = PretrainedModel.LoadForSequenceClassification(Tiny(arch, sub));
        model.Eval();
        long headCount = model.NamedParameters().Where(p => p.Name.StartsWith(head + ".", StringComparison.Ordinal)).Sum(p => (long)p.Parameter.Count);
        var peft = PeftModel.Inject(model, new PromptTuningConfig { NumVirtualTokens = 4, TaskType = "SEQ_CLS" }, generator: new Generator(1));
        Assert.AreEqual(4L * hidden + headCount, peft.GetNumberOfTrainableParameters().Trainable, "n·token_dim + the head (modules_to_save)");
        using var noGrad = Autograd.NoGrad();
        // Row 2 right-padded in a batch vs alone: the prompt sits in front of both, and the mask hides the padding.
        var batched = model.Forward(Tensor.FromInt32([5, 17, 42, 9, 7, 21, 0, 0], 2, 4), Tensor.FromInt32([1, 1, 1, 1, 1, 1, 0, 0], 2, 4)).ToArray();
        var alone = model.Forward(Tensor.FromInt32([7, 21], 1, 2), Tensor.FromInt32([1, 1], 1, 2)).ToArray();
        int labels = alone.Length;
        Close.Assert(alone, batched.AsSpan(labels, labels), $"{arch}: padded row vs alone", atol: 1e-5, rtol: 1e-5);

        var embeddings = (IInputEmbeddingsModel)model.GetModule(model.NamedChildren().First().Name);
        Assert.AreEqual(hidden, embeddings.HiddenSize);
        using (peft.DisableAdapters())
        {
            var baseLogits = model.Forward(Tensor.FromInt32([7, 21], 1, 2), Tensor.FromInt32([1, 1], 1, 2));
            Assert.IsTrue(LoraFixtures.MaxAbsDiff(baseLogits, Tensor.From(alone, 1, labels)) > 1e-6, $"{arch}: disabling removes the prompt");
        }
        _ = encoder;
    }

    [TestMethod]
    public void DecoderClassification_FromEmbeddings_MatchesTheIdsForward()
    {
        var model = (DecoderForSequenceClassification)PretrainedModel.LoadForSequenceClassification(Tiny("llama_gqa", "sequence_classification"));
        var ids = Tensor.FromInt32([5, 17, 42, 9, 7, 21, 11, 3], 2, 4);
        var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 1], 2, 4);
        using var noGrad = Autograd.NoGrad();
        LoraFixtures.AssertBitIdentical(model.Forward(ids, mask), model.ForwardEmbeddings(model.Embed(ids), mask), "inputs_embeds path");
    }

    [TestMethod]
    public void PTuning_CountsFollowPeftsFormula_AndSaveLoadGivesTheTableBitForBit()
    {
        int n = 3, td = 32, h = 6;
        foreach (var type in new[] { PromptEncoderReparameterization.Mlp, PromptEncoderReparameterization.Lstm })
        {
            string dir = Path.Combine(Path.GetTempPath(), "ptuning-" + Guid.NewGuid().ToString("N"));
            try
            {
                var model = PretrainedModel.LoadForCausalLM(Tiny("gpt2"));
                model.Eval();
                var peft = PeftModel.Inject(model, new PromptEncoderConfig { NumVirtualTokens = n, EncoderHiddenSize = h, ReparameterizationType = type }, generator: new Generator(2));
                long expected = type == PromptEncoderReparameterization.Mlp
                    ? n * td + (td * h + h) + (h * h + h) + (h * td + td)
                    : n * td + 2 * ((4 * h * td + 4 * h * h + 8 * h) + (4 * h * 2 * h + 4 * h * h + 8 * h)) + (2 * h * 2 * h + 2 * h) + (2 * h * td + td);
                Assert.AreEqual(expected, peft.GetNumberOfTrainableParameters().Trainable, $"{type}");
                var ids = Tensor.FromInt32([5, 17, 42, 9, 7, 21, 11, 0], 2, 4);
                var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 0], 2, 4);
                var encoder = ((PromptEncoderLayer)model.GetModule("transformer.prompt_encoder")).Encoder("default");
                GradCheck.Check(_ => model.Forward(ids, mask), [encoder.NamedParameters().First().Parameter], eps: 1e-2, atol: 2e-3, rtol: 2e-2);
                Tensor before;
                using (Autograd.NoGrad()) before = model.Forward(ids, mask);
                CollectionAssert.AreEqual(new[] { 2, n + 4, model.VocabSize }, before.ShapeArray(), "causal-LM logits keep the virtual positions, as PEFT's");
                peft.SavePretrained(dir);
                using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
                {
                    CollectionAssert.AreEqual(new[] { "prompt_embeddings" }, file.Names.ToArray());
                }
                var fresh = PretrainedModel.LoadForCausalLM(Tiny("gpt2"));
                fresh.Eval();
                PeftModel.FromPretrained(fresh, dir);
                Assert.IsFalse(((PromptEncoderLayer)fresh.GetModule("transformer.prompt_encoder")).Encoder("default").IsReparameterized);
                Tensor after;
                using (Autograd.NoGrad()) after = fresh.Forward(ids, mask);
                LoraFixtures.AssertBitIdentical(before, after, $"{type} reloaded as a lookup table");
            }
            finally
            {
                if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            }
        }
    }

    [TestMethod]
    [DataRow("bert", "token_classification")]
    [DataRow("llama_gqa", "token_classification")]
    public void TokenClassification_DropsTheVirtualPositions_SoLogitsLineUpWithLabels(string arch, string sub)
    {
        var model = PretrainedModel.LoadForTokenClassification(Tiny(arch, sub));
        model.Eval();
        PeftModel.Inject(model, new PromptTuningConfig { NumVirtualTokens = 3, TaskType = "TOKEN_CLS" });
        using var noGrad = Autograd.NoGrad();
        var logits = model.Forward(Tensor.FromInt32([5, 17, 42, 9, 7, 21, 0, 0], 2, 4), Tensor.FromInt32([1, 1, 1, 1, 1, 1, 0, 0], 2, 4));
        CollectionAssert.AreEqual(new[] { 2, 4, model.NumLabels }, logits.ShapeArray());
    }

    [TestMethod]
    public void PromptTuningModel_OnARealDecoder_AgreesWithTheInjectedPrompt()
    {
        // The stand-alone PromptTuningModel (IInputEmbeddingsModel path) and PeftModel's prompt_encoder slot compute the
        // same thing: prompt in front of the embeddings, mask extended, pooling at the last real token.
        var ids = Tensor.FromInt32([5, 17, 42, 9, 7, 21, 0, 0], 2, 4);
        var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 0, 0], 2, 4);
        var standalone = PromptTuningModel.Create(PretrainedModel.LoadForSequenceClassification(Tiny("llama_gqa", "sequence_classification")),
            new PromptTuningConfig { NumVirtualTokens = 3 }, new Generator(9));
        var model = PretrainedModel.LoadForSequenceClassification(Tiny("llama_gqa", "sequence_classification"));
        var peft = PeftModel.Inject(model, new PromptTuningConfig { NumVirtualTokens = 3 });
        PromptReferenceTests.SetTable(model, "model.prompt_encoder", standalone.PromptEmbeddings.ToArray());
        using var noGrad = Autograd.NoGrad();
        Close.Assert(standalone.Forward(ids, mask).ToArray(), model.Forward(ids, mask).ToArray(), "stand-alone vs injected", atol: 1e-6, rtol: 1e-6);
        Tensor baseline;
        using (peft.DisableAdapters()) baseline = model.Forward(ids, mask);
        var reference = PretrainedModel.LoadForSequenceClassification(Tiny("llama_gqa", "sequence_classification")).Forward(ids, mask);
        LoraFixtures.AssertBitIdentical(reference, baseline, "disabled prompt = the base model");
    }

    [TestMethod]
    public void PromptTuning_TextInit_CopiesTheWordEmbeddings_ThroughInject()
    {
        var model = PretrainedModel.LoadForCausalLM(Tiny("llama_gqa"));
        PeftModel.Inject(model, new PromptTuningConfig { NumVirtualTokens = 3, Init = PromptTuningInit.Text, InitText = "x", InitTextTokenIds = [7, 9] });
        var table = ((LookupTableEncoder)((PromptEncoderLayer)model.GetModule("model.prompt_encoder")).Encoder("default")).Table.ToArray();
        var words = model.Decoder.InputEmbeddingWeight.ToArray();
        int[] rows = [7, 9, 7];
        for (int r = 0; r < 3; r++) CollectionAssert.AreEqual(words.AsSpan(rows[r] * 32, 32).ToArray(), table.AsSpan(r * 32, 32).ToArray(), $"row {r}");
    }
}
