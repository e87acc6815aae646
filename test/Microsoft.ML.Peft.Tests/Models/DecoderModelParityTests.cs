using System.Text.Json;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Llama;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// Tiny random GPT-2 / GPT-NeoX / Llama (GQA + llama3 RoPE scaling) / Qwen2 checkpoints
/// (Fixtures/reference/models/&lt;arch&gt;, PyTorch 1.13) with right and left padding: hidden states, causal-LM logits and
/// loss, and sequence-classification logits at the last non-pad token, within 1e-4 absolute / 1e-3 relative.
/// </summary>
[TestClass]
public sealed class DecoderModelParityTests
{
    [TestMethod]
    [DataRow("gpt2", "right_padding")]
    [DataRow("gpt2", "left_padding")]
    [DataRow("gpt_neox", "right_padding")]
    [DataRow("gpt_neox", "left_padding")]
    [DataRow("llama_gqa", "right_padding")]
    [DataRow("llama_gqa", "left_padding")]
    [DataRow("qwen2", "right_padding")]
    [DataRow("qwen2", "left_padding")]
    public void CausalLM_HiddenStatesLogitsAndLoss_MatchPyTorch(string arch, string variant)
    {
        var model = (CausalLanguageModel)PretrainedModel.Load(TestPaths.Fixture("reference", "models", arch));
        var report = model.LoadReport!;
        Assert.AreEqual(0, report.InitializedParameters.Count, string.Join(", ", report.InitializedParameters));
        Assert.AreEqual(0, report.UnexpectedKeys.Count, string.Join(", ", report.UnexpectedKeys));
        Assert.AreEqual(arch is "gpt2" or "qwen2", model.TiedEmbeddings);

        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = fx.Int($"{variant}.input_ids");
        var mask = fx.Ints($"{variant}.attention_mask");
        int h = model.HiddenSize, v = model.VocabSize;
        // Left-padding queries see no key: their outputs are undefined in HF, so compare real tokens only.
        Func<int, bool> real = i => mask[i / h] == 1;

        var hidden = new List<Tensor>();
        var last = model.Decoder.Forward(ids, fx.Int($"{variant}.attention_mask"), hiddenStates: hidden);
        Assert.AreEqual(3, hidden.Count);
        Close.Assert(fx.Float($"{variant}.embeddings_output"), hidden[0], $"{arch} {variant} embeddings_output");
        Close.Assert(fx.Float($"{variant}.layer_outputs.0"), hidden[1], $"{arch} {variant} layer_outputs.0", where: real);
        Close.Assert(fx.Float($"{variant}.layer_outputs.1"), hidden[2], $"{arch} {variant} layer_outputs.1", where: real);
        Close.Assert(fx.Float($"{variant}.last_hidden_state"), last, $"{arch} {variant} last_hidden_state", where: real);

        var logits = model.Forward(ids, fx.Int($"{variant}.attention_mask"));
        Close.Assert(fx.Float($"{variant}.causal_lm.logits"), logits, $"{arch} {variant} causal_lm.logits", where: i => mask[i / v] == 1);
        float expectedLoss = fx.Floats($"{variant}.causal_lm.loss")[0];
        float loss = CausalLanguageModel.LanguageModelingLoss(logits, fx.Int($"{variant}.causal_lm.labels")).Item();
        Assert.AreEqual(expectedLoss, loss, 1e-4 + 1e-3 * Math.Abs(expectedLoss), $"{arch} {variant} causal_lm.loss");
    }

    [TestMethod]
    [DataRow("gpt2", "right_padding")]
    [DataRow("gpt2", "left_padding")]
    [DataRow("gpt_neox", "right_padding")]
    [DataRow("gpt_neox", "left_padding")]
    [DataRow("llama_gqa", "right_padding")]
    [DataRow("llama_gqa", "left_padding")]
    [DataRow("qwen2", "right_padding")]
    [DataRow("qwen2", "left_padding")]
    public void SequenceClassification_ScoresTheLastNonPadToken_AsPyTorch(string arch, string variant)
    {
        var model = (DecoderForSequenceClassification)PretrainedModel.Load(TestPaths.Fixture("reference", "models", arch, "sequence_classification"));
        Assert.AreEqual(0, model.LoadReport!.InitializedParameters.Count);
        CollectionAssert.AreEqual(new[] { "score" }, model.ClassifierHeadNames.ToArray());
        using var fx = ReferenceFixture.Open($"models/{arch}/expected.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = fx.Int($"{variant}.input_ids");
        var mask = fx.Int($"{variant}.attention_mask");
        CollectionAssert.AreEqual(fx.Ints($"{variant}.sequence_classification.pooled_index"), model.PooledIndices(ids, mask));
        Close.Assert(fx.Float($"{variant}.sequence_classification.logits"), model.Forward(ids, mask), $"{arch} {variant} sequence_classification.logits");
    }

    [TestMethod]
    public void Llama3RopeScaling_InverseFrequencies_MatchTransformers()
    {
        using var fx = ReferenceFixture.Open("models/llama_gqa/expected.safetensors");
        var expected = fx.Json.GetProperty("rope_inv_freq").EnumerateArray().Select(e => (float)e.GetDouble()).ToArray();
        var model = (CausalLanguageModel)PretrainedModel.Load(TestPaths.Fixture("reference", "models", "llama_gqa"));
        var actual = ((LlamaModel)model.Decoder).Rotary.InverseFrequencies;
        Assert.AreEqual(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-6 * expected[i], $"inv_freq[{i}]");
    }

    [TestMethod]
    public void DecoderModules_CarryThePeftTargetNames()
    {
        var llama = PretrainedModel.Load(TestPaths.Fixture("reference", "models", "qwen2"));
        foreach (string name in new[] { "q_proj", "k_proj", "v_proj", "o_proj" })
            Assert.IsInstanceOfType<Linear>(llama.GetModule("model.layers.1.self_attn." + name));
        foreach (string name in new[] { "gate_proj", "up_proj", "down_proj" })
            Assert.IsInstanceOfType<Linear>(llama.GetModule("model.layers.0.mlp." + name));
        Assert.IsNotNull(((Linear)llama.GetModule("model.layers.0.self_attn.q_proj")).Bias, "Qwen2 q_proj has a bias");
        Assert.IsNull(((Linear)llama.GetModule("model.layers.0.self_attn.o_proj")).Bias, "Qwen2 o_proj has none");

        var gpt2 = PretrainedModel.Load(TestPaths.Fixture("reference", "models", "gpt2"));
        var cAttn = (Conv1D)gpt2.GetModule("transformer.h.0.attn.c_attn");
        Assert.AreEqual(32, cAttn.InFeatures);
        Assert.AreEqual(96, cAttn.OutFeatures);
        CollectionAssert.AreEqual(new[] { 32, 96 }, cAttn.Weight.ShapeArray(), "Conv1D keeps the checkpoint's [in, out] layout");
        Assert.IsInstanceOfType<Conv1D>(gpt2.GetModule("transformer.h.1.mlp.c_fc"));
        Assert.IsInstanceOfType<Conv1D>(gpt2.GetModule("transformer.h.1.attn.c_proj"));

        var neox = PretrainedModel.Load(TestPaths.Fixture("reference", "models", "gpt_neox"));
        foreach (string name in new[] { "attention.query_key_value", "attention.dense", "mlp.dense_h_to_4h", "mlp.dense_4h_to_h" })
            Assert.IsInstanceOfType<Linear>(neox.GetModule("gpt_neox.layers.0." + name));
        CollectionAssert.AreEqual(new[] { "embed_out" }, neox.HeadModuleNames.ToArray());
    }
}
