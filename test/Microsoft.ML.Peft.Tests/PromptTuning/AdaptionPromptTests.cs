using Microsoft.ML.Peft.AdaptionPrompt;
using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Lora;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.PromptTuning;

/// <summary>
/// LLaMA-Adapter (ADAPTION_PROMPT) through <see cref="PeftModel"/>: the zero gate reproduces the base model bit for
/// bit, the parameter count is adapter_layers · (adapter_len · hidden + 1), only the top layers are adapted, PEFT's
/// saved keys, save → load bit for bit, gradients (finite differences) only into the adapter, and the Llama-only error.
/// </summary>
[TestClass]
public sealed class AdaptionPromptTests
{
    private static readonly Tensor Ids = Tensor.FromInt32([5, 17, 42, 9, 7, 21, 11, 0], 2, 4);
    private static readonly Tensor Mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 0], 2, 4);

    [TestMethod]
    public void ZeroGate_ReproducesTheBaseModelExactly_OnStories260K()
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        int[] ids = [1, 403, 407, 261, 378, 291, 280, 1, 12, 99, 0, 0];
        var idTensor = Tensor.FromInt32(ids, 2, 6);
        var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0], 2, 6);
        Tensor before;
        using (Autograd.NoGrad()) before = model.Forward(idTensor, mask);
        var peft = PeftModel.Inject(model, new AdaptionPromptConfig { AdapterLen = 4, AdapterLayers = 3, TaskType = "CAUSAL_LM" });
        // stories260K: 5 layers of hidden 64 → the top 3 adapted, 3 · (4 · 64 + 1) parameters.
        Assert.AreEqual(3L * (4 * 64 + 1), peft.GetNumberOfTrainableParameters().Trainable);
        CollectionAssert.AreEqual(new[] { "model.layers.2.self_attn.adaption", "model.layers.3.self_attn.adaption", "model.layers.4.self_attn.adaption" }, peft.TargetedModuleNames().ToArray());
        Tensor after;
        using (Autograd.NoGrad()) after = model.Forward(idTensor, mask);
        LoraFixtures.AssertBitIdentical(before, after, "zero gate");
        CollectionAssert.AreEqual(
            new[] { "base_model.model.model.layers.2.self_attn.adaption_prompt", "base_model.model.model.layers.2.self_attn.adaption_gate" },
            peft.GetAdapterStateDict().Keys.Take(2).ToArray(), "PEFT's saved keys");
    }

    [TestMethod]
    public void Gradients_MatchFiniteDifferences_AndReachOnlyTheAdapter()
    {
        var model = PretrainedModel.LoadForSequenceClassification(TestPaths.Fixture("reference", "models", "llama_gqa", "sequence_classification"));
        var peft = PeftModel.Inject(model, new AdaptionPromptConfig { AdapterLen = 2, AdapterLayers = 1 }, generator: new Generator(2));
        var layer = (AdaptionPromptLayer)model.GetModule("model.layers.1.self_attn.adaption");
        var prompt = layer.Prompt("default");
        var gate = layer.Gate("default");
        using (Autograd.NoGrad()) gate.AsSpan<float>()[0] = 0.8f; // an open gate, so the prompt's gradient is not zero
        GradCheck.Check(_ => model.Forward(Ids, Mask), [prompt, gate], eps: 1e-2, atol: 2e-3, rtol: 2e-2);
        var others = model.NamedParameters().Where(p => p.Parameter.Grad is not null && !ReferenceEquals(p.Parameter, prompt) && !ReferenceEquals(p.Parameter, gate)).Select(p => p.Name).ToList();
        Assert.AreEqual(0, others.Count, string.Join(", ", others));
        Assert.AreEqual(2, peft.TrainableParameters().Count());
    }

    [TestMethod]
    public void SaveLoad_ReproducesOutputsBitForBit()
    {
        string dir = Path.Combine(Path.GetTempPath(), "adaption-" + Guid.NewGuid().ToString("N"));
        try
        {
            string path = TestPaths.Fixture("reference", "models", "llama_gqa");
            var model = PretrainedModel.LoadForCausalLM(path);
            var peft = PeftModel.Inject(model, new AdaptionPromptConfig { AdapterLen = 3, AdapterLayers = 2 }, generator: new Generator(5));
            foreach (var (_, layer) in peft.TunerLayers()) ((AdaptionPromptLayer)layer).Gate("default").AsSpan<float>()[0] = 0.25f;
            Tensor expected;
            using (Autograd.NoGrad()) expected = model.Forward(Ids, Mask);
            peft.SavePretrained(dir);
            using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
            {
                Assert.AreEqual(4, file.Names.Count());
                Assert.IsTrue(file.TryGetTensor("base_model.model.model.layers.0.self_attn.adaption_prompt", out var view));
                CollectionAssert.AreEqual(new[] { 1, 3, 32 }, view.Shape.ToArray());
            }
            StringAssert.Contains(File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName)), "\"adapter_layers\": 2");
            var fresh = PretrainedModel.LoadForCausalLM(path);
            PeftModel.FromPretrained(fresh, dir);
            Tensor actual;
            using (Autograd.NoGrad()) actual = fresh.Forward(Ids, Mask);
            LoraFixtures.AssertBitIdentical(expected, actual, "reloaded adaption prompt");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void NonLlamaModels_AndTooManyLayers_AreRefusedWithTheReason()
    {
        var gpt2 = PretrainedModel.LoadForCausalLM(TestPaths.Fixture("reference", "models", "gpt2"));
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(gpt2, new AdaptionPromptConfig { AdapterLen = 2, AdapterLayers = 1 }));
        StringAssert.Contains(e.Message, "supports Llama-family models only");
        StringAssert.Contains(e.Message, "transformer.h.0.attn");
        var llama = PretrainedModel.LoadForCausalLM(TestPaths.Fixture("reference", "models", "llama_gqa"));
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(llama, new AdaptionPromptConfig { AdapterLen = 2, AdapterLayers = 3 }));
        StringAssert.Contains(e.Message, "adapter_layers = 3 but CausalLanguageModel has only 2 attention layers");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(llama, new AdaptionPromptConfig { AdapterLen = 0, AdapterLayers = 1 }));
        StringAssert.Contains(e.Message, "adapter_len must be a positive integer");
        var peft = PeftModel.Inject(llama, new AdaptionPromptConfig { AdapterLen = 2, AdapterLayers = 1 });
        var merge = Assert.ThrowsExactly<InvalidOperationException>(() => peft.MergeAndUnload());
        StringAssert.Contains(merge.Message, "cannot be merged");
    }
}
