using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.PrefixTuning;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.PromptTuning;

/// <summary>
/// Prefix tuning / P-tuning v2 through <see cref="PeftModel"/> on the tiny random checkpoints: PEFT's parameter
/// formula and config filling (grouped-query key/value width), gradients of the key/value path against finite
/// differences (and nowhere else), save → load of the projected table bit for bit, and the injection errors.
/// </summary>
[TestClass]
public sealed class PrefixTuningTests
{
    private static string Tiny(string arch, string sub = "") => TestPaths.Fixture("reference", "models", arch, sub);

    [TestMethod]
    public void TrainableParameters_FollowPeftsFormula_WithGqaKeyValueWidth()
    {
        // llama_gqa: 2 layers, 2 KV heads × head_dim 8 = token_dim 16 (not hidden 32), as PEFT's GQA adjustment.
        var llama = PretrainedModel.LoadForCausalLM(Tiny("llama_gqa"));
        var peft = PeftModel.Inject(llama, new PrefixTuningConfig { NumVirtualTokens = 5 });
        long all = llama.Parameters().Sum(p => (long)p.Count);
        Assert.AreEqual(5L * 2 * 2 * 16, peft.GetNumberOfTrainableParameters().Trainable);
        Assert.AreEqual(all, peft.GetNumberOfTrainableParameters().All);
        var config = (PrefixTuningConfig)peft.ActiveConfig;
        Assert.AreEqual((16, 2, 2, 16), (config.TokenDim!.Value, config.NumAttentionHeads!.Value, config.NumLayers!.Value, config.EncoderHiddenSize!.Value));

        // With the projection: n·td + (td·h + h) + (h·2L·td + 2L·td), h = encoder_hidden_size.
        var bert = PretrainedModel.LoadForSequenceClassification(Tiny("bert"));
        peft = PeftModel.Inject(bert, new PrefixTuningConfig { NumVirtualTokens = 4, PrefixProjection = true, EncoderHiddenSize = 7 });
        int td = 32, h = 7, width = 2 * 2 * td;
        Assert.AreEqual(4L * td + (td * h + h) + ((long)h * width + width), peft.GetNumberOfTrainableParameters().Trainable, "embedding + MLP (no task_type: the head stays frozen)");
    }

    [TestMethod]
    public void KeyValuePrefixGradients_MatchFiniteDifferences_AndReachNothingElse()
    {
        foreach (var (arch, sub) in new[] { ("llama_gqa", "sequence_classification"), ("bert", ""), ("gpt2", "sequence_classification"), ("gpt_neox", "sequence_classification"), ("distilbert", "") })
        {
            var model = PretrainedModel.LoadForSequenceClassification(Tiny(arch, sub));
            model.Eval();
            var peft = PeftModel.Inject(model, new PrefixTuningConfig { NumVirtualTokens = 1 }, generator: new Generator(3));
            var table = ((LookupTableEncoder)((PromptEncoderLayer)peft.TunerLayers().Single().Layer).Encoder("default")).Table;
            using (Autograd.NoGrad()) table.Mul_(0.3f); // keep the softmax away from saturation for the finite differences
            var ids = Tensor.FromInt32([5, 17, 42, 9, 7, 21, 11, 0], 2, 4);
            var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 0], 2, 4);
            GradCheck.Check(_ => model.Forward(ids, mask), [table], eps: 1e-2, atol: 2e-3, rtol: 2e-2);
            var others = model.NamedParameters().Where(p => p.Parameter.Grad is not null && !ReferenceEquals(p.Parameter, table)).Select(p => p.Name).ToList();
            Assert.AreEqual(0, others.Count, $"{arch}: gradients reached {string.Join(", ", others)}");
            Assert.AreEqual(1, peft.TrainableParameters().Count(), $"{arch}: only the prefix trains");
        }
    }

    [TestMethod]
    public void PrefixIsSeenByEveryPosition_PaddingStaysHidden()
    {
        // A right-padded row gives the same real-token states as the row alone: the prefix extends the mask with ones.
        var model = PretrainedModel.LoadForCausalLM(Tiny("llama_gqa"));
        PeftModel.Inject(model, new PrefixTuningConfig { NumVirtualTokens = 3 }, generator: new Generator(4));
        using var noGrad = Autograd.NoGrad();
        var batched = model.Decoder.Forward(Tensor.FromInt32([5, 17, 42, 9, 7, 21, 0, 0], 2, 4), Tensor.FromInt32([1, 1, 1, 1, 1, 1, 0, 0], 2, 4)).ToArray();
        var alone = model.Decoder.Forward(Tensor.FromInt32([7, 21], 1, 2)).ToArray();
        Close.Assert(alone, batched.AsSpan(4 * 32, 2 * 32), "row alone vs right-padded", atol: 1e-5, rtol: 1e-5);
    }

    [TestMethod]
    public void SaveLoad_KeepsOnlyTheProjectedTable_AndReproducesOutputsBitForBit()
    {
        string dir = Path.Combine(Path.GetTempPath(), "prefix-" + Guid.NewGuid().ToString("N"));
        try
        {
            var ids = Tensor.FromInt32([5, 17, 42, 9, 7, 21, 11, 0], 2, 4);
            var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 0], 2, 4);
            var model = PretrainedModel.LoadForSequenceClassification(Tiny("bert"));
            model.Eval();
            var peft = PeftModel.Inject(model, new PrefixTuningConfig { NumVirtualTokens = 3, PrefixProjection = true, EncoderHiddenSize = 8, TaskType = "SEQ_CLS" });
            Tensor expected;
            using (Autograd.NoGrad()) expected = model.Forward(ids, mask);
            peft.SavePretrained(dir);
            using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
            {
                CollectionAssert.AreEquivalent(new[] { "prompt_embeddings", "base_model.classifier.weight", "base_model.classifier.bias" }, file.Names.ToArray());
                Assert.IsTrue(file.TryGetTensor("prompt_embeddings", out var view));
                CollectionAssert.AreEqual(new[] { 3, 2 * 2 * 32 }, view.Shape.ToArray(), "[n, num_layers·2·token_dim]: the MLP is dropped");
            }
            string json = File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName));
            StringAssert.Contains(json, "\"peft_type\": \"PREFIX_TUNING\"");
            StringAssert.Contains(json, "\"prefix_projection\": true");
            StringAssert.Contains(json, "\"encoder_hidden_size\": 8");

            foreach (bool trainable in new[] { false, true })
            {
                var fresh = PretrainedModel.LoadForSequenceClassification(Tiny("bert"));
                fresh.Eval();
                var loaded = PeftModel.FromPretrained(fresh, dir, isTrainable: trainable);
                var encoder = ((PromptEncoderLayer)fresh.GetModule("bert.prompt_encoder")).Encoder("default");
                Assert.IsFalse(encoder.IsReparameterized, "a saved prefix loads as its lookup table");
                Tensor actual;
                using (Autograd.NoGrad()) actual = fresh.Forward(ids, mask);
                LoraFixtures.AssertBitIdentical(expected, actual, $"reloaded (trainable {trainable})");
                Assert.AreEqual(trainable ? 3 : 0, loaded.TrainableParameters().Count());
            }
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void BadInput_IsRefusedAtInjection_WithTheReason()
    {
        // tiny BERT has max_position_embeddings = 64: a 64-token prefix leaves no position for the text.
        var bert = PretrainedModel.LoadForSequenceClassification(Tiny("bert"));
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(bert, new PrefixTuningConfig { NumVirtualTokens = 64 }));
        StringAssert.Contains(e.Message, "num_virtual_tokens = 64");
        StringAssert.Contains(e.Message, "max_position_embeddings = 64");
        Assert.IsTrue(bert.Parameters().All(p => p.RequiresGrad), "a refused config leaves the model untouched");

        var tiny = new TinyModel(new Generator(1));
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(tiny, new PrefixTuningConfig { NumVirtualTokens = 2 }));
        StringAssert.Contains(e.Message, "PREFIX_TUNING needs a transformer backbone");
        StringAssert.Contains(e.Message, "TinyModel has none");

        var llama = PretrainedModel.LoadForCausalLM(Tiny("llama_gqa"));
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(llama, new PrefixTuningConfig { NumVirtualTokens = 2, TokenDim = 32 }));
        StringAssert.Contains(e.Message, "key/value width 16 (2 heads × 8)");

        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 0}""", "a.json"));
        StringAssert.Contains(e.Message, "a.json: num_virtual_tokens must be a positive integer");
    }

    [TestMethod]
    public void ConfigJson_ReadsPeftsPrefixTuningFile()
    {
        const string peftJson = """
            {"base_model_name_or_path": "gpt2", "encoder_hidden_size": 768, "inference_mode": true, "num_attention_heads": 12,
             "num_layers": 12, "num_transformer_submodules": 1, "num_virtual_tokens": 20, "peft_type": "PREFIX_TUNING",
             "prefix_projection": false, "revision": null, "task_type": "CAUSAL_LM", "token_dim": 768}
            """;
        var config = (PrefixTuningConfig)PeftConfig.FromJson(peftJson);
        Assert.AreEqual((20, 768, 12, 12, 768, false), (config.NumVirtualTokens, config.TokenDim, config.NumLayers, config.NumAttentionHeads, config.EncoderHiddenSize, config.PrefixProjection));
        Assert.AreEqual(0, config.ExtraFields.Count);
        Assert.AreEqual(config.ToJson(), PeftConfig.FromJson(config.ToJson()).ToJson());
    }
}
