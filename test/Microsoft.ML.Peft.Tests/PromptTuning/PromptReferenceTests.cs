using Microsoft.ML.Peft.AdaptionPrompt;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Bert;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.PrefixTuning;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.PTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.PromptTuning;

/// <summary>
/// The soft-prompt methods against build/reference/prompts_reference.py (PyTorch 1.13, the attention written out as
/// transformers + PEFT compute it) on the tiny random Llama (4 query / 2 key-value heads, llama3 RoPE) and BERT
/// checkpoints: key/value prefixes (positions shifted by the prefix, prefix seen by every query), input prompts
/// (positions 0..n−1, token type 0, BERT pooling the first virtual token), LLaMA-Adapter with a non-zero gate, and
/// P-tuning's MLP and LSTM encoders on PyTorch's weights. Tolerance 1e-4 absolute + 1e-3 relative.
/// </summary>
[TestClass]
public sealed class PromptReferenceTests
{
    private static ReferenceFixture Open() => ReferenceFixture.Open("prompts/expected.safetensors");

    private static CausalLanguageModel Llama() => PretrainedModel.LoadForCausalLM(TestPaths.Fixture("reference", "models", "llama_gqa"));

    private static BertForSequenceClassification Bert()
    {
        var model = (BertForSequenceClassification)PretrainedModel.LoadForSequenceClassification(TestPaths.Fixture("reference", "models", "bert"));
        model.Eval();
        return model;
    }

    /// <summary>Copies fixture values into the live table of adapter "default" of the model's prompt encoder.</summary>
    internal static void SetTable(Module model, string layerPath, float[] values)
    {
        var encoder = (LookupTableEncoder)((PromptEncoderLayer)model.GetModule(layerPath)).Encoder("default");
        values.CopyTo(encoder.Table.AsSpan<float>());
    }

    [TestMethod]
    public void Llama_PrefixTuning_MatchesPyTorch()
    {
        using var fx = Open();
        var model = Llama();
        PeftModel.Inject(model, new PrefixTuningConfig { NumVirtualTokens = 3 });
        SetTable(model, "model.prompt_encoder", fx.Floats("llama.prefix_table"));
        using var noGrad = Autograd.NoGrad();
        var hidden = model.Decoder.Forward(fx.Int("input_ids"), fx.Int("attention_mask"));
        Close.Assert(fx.Float("llama.prefix.last_hidden_state"), hidden, "llama prefix last_hidden_state");
    }

    [TestMethod]
    public void Llama_PromptTuning_MatchesPyTorch()
    {
        using var fx = Open();
        var model = Llama();
        PeftModel.Inject(model, new PromptTuningConfig { NumVirtualTokens = 3 });
        SetTable(model, "model.prompt_encoder", fx.Floats("llama.prompt"));
        using var noGrad = Autograd.NoGrad();
        var hidden = model.Decoder.Forward(fx.Int("input_ids"), fx.Int("attention_mask"));
        CollectionAssert.AreEqual(new[] { 2, 8, 32 }, hidden.ShapeArray(), "3 virtual + 5 real positions");
        Close.Assert(fx.Float("llama.prompt.last_hidden_state"), hidden, "llama prompt last_hidden_state");
    }

    [TestMethod]
    public void Llama_AdaptionPrompt_WithAnOpenGate_MatchesPyTorch()
    {
        using var fx = Open();
        var model = Llama();
        PeftModel.Inject(model, new AdaptionPromptConfig { AdapterLen = 2, AdapterLayers = 1 });
        var layer = (AdaptionPromptLayer)model.GetModule("model.layers.1.self_attn.adaption");
        fx.Floats("llama.adaption_prompt").CopyTo(layer.Prompt("default").AsSpan<float>());
        fx.Floats("llama.adaption_gate").CopyTo(layer.Gate("default").AsSpan<float>());
        using var noGrad = Autograd.NoGrad();
        var hidden = model.Decoder.Forward(fx.Int("input_ids"), fx.Int("attention_mask"));
        Close.Assert(fx.Float("llama.adaption.last_hidden_state"), hidden, "llama adaption last_hidden_state");
    }

    [TestMethod]
    public void Bert_PrefixTuning_MatchesPyTorch()
    {
        using var fx = Open();
        var model = Bert();
        PeftModel.Inject(model, new PrefixTuningConfig { NumVirtualTokens = 3 });
        SetTable(model, "bert.prompt_encoder", fx.Floats("bert.prefix_table"));
        using var noGrad = Autograd.NoGrad();
        Close.Assert(fx.Float("bert.prefix.last_hidden_state"), model.Bert.Forward(fx.Int("input_ids"), fx.Int("attention_mask")), "bert prefix last_hidden_state");
        Close.Assert(fx.Float("bert.prefix.logits"), model.Forward(fx.Int("input_ids"), fx.Int("attention_mask")), "bert prefix logits");
    }

    [TestMethod]
    public void Bert_PromptTuning_MatchesPyTorch()
    {
        using var fx = Open();
        var model = Bert();
        PeftModel.Inject(model, new PromptTuningConfig { NumVirtualTokens = 3 });
        SetTable(model, "bert.prompt_encoder", fx.Floats("bert.prompt"));
        using var noGrad = Autograd.NoGrad();
        Close.Assert(fx.Float("bert.prompt.last_hidden_state"), model.Bert.Forward(fx.Int("input_ids"), fx.Int("attention_mask")), "bert prompt last_hidden_state");
        Close.Assert(fx.Float("bert.prompt.logits"), model.Forward(fx.Int("input_ids"), fx.Int("attention_mask")), "bert prompt logits (pooled at the first virtual token)");
    }

    [TestMethod]
    [DataRow("mlp", PromptEncoderReparameterization.Mlp)]
    [DataRow("lstm", PromptEncoderReparameterization.Lstm)]
    public void PTuningEncoder_OnPyTorchWeights_ComputesPyTorchsTable(string kind, PromptEncoderReparameterization type)
    {
        using var fx = Open();
        var encoder = new PTuningEncoder(4, 6, 5, type, 2, new Generator(1));
        var names = encoder.NamedParameters().Select(p => p.Name).ToList();
        foreach (var (name, parameter) in encoder.NamedParameters())
        {
            Assert.IsTrue(fx.Has($"ptuning_{kind}.{name}"), $"PyTorch has no '{name}' (ours: {string.Join(", ", names)})");
            fx.Floats($"ptuning_{kind}.{name}").CopyTo(parameter.AsSpan<float>());
        }
        Assert.AreEqual(type == PromptEncoderReparameterization.Lstm ? 1 + 16 + 4 : 1 + 6, names.Count * 1, "every PyTorch tensor has a counterpart");
        using var noGrad = Autograd.NoGrad();
        Close.Assert(fx.Float($"ptuning_{kind}.table"), encoder.Compute(), $"P-tuning {kind} table", atol: 1e-5, rtol: 1e-4);
    }
}
