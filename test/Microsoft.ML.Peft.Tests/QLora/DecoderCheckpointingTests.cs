using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.QLora;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.QLora;

/// <summary>
/// <see cref="DecoderModel.GradientCheckpointing"/> in the library decoders' layer loops: on tiny random Llama, GPT-2
/// and GPT-NeoX models with LoRA on every linear layer and every dropout on (attention probabilities, residual/hidden,
/// LoRA's own), the gradient of every trainable parameter with checkpointing equals the plain one bit for bit. The
/// recompute runs the same ops in the same order on the same inputs, and rewinds every dropout stream, so nothing may
/// differ at all; a replay that drew other masks would change the gradients by far more than rounding.
/// </summary>
[TestClass]
public sealed class DecoderCheckpointingTests
{
    private const string Llama = """
        {"model_type": "llama", "vocab_size": 61, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 3,
         "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64, "attention_dropout": 0.2,
         "tie_word_embeddings": false}
        """;

    private const string Gpt2 = """
        {"model_type": "gpt2", "vocab_size": 61, "n_embd": 32, "n_layer": 3, "n_head": 4, "n_positions": 64,
         "attn_pdrop": 0.2, "resid_pdrop": 0.2, "embd_pdrop": 0.2}
        """;

    private const string GptNeoX = """
        {"model_type": "gpt_neox", "vocab_size": 61, "hidden_size": 32, "intermediate_size": 48, "num_hidden_layers": 3,
         "num_attention_heads": 4, "max_position_embeddings": 64, "rotary_pct": 0.5, "attention_dropout": 0.2,
         "hidden_dropout": 0.2, "use_parallel_residual": true}
        """;

    [TestMethod]
    [DataRow("llama")]
    [DataRow("gpt2")]
    [DataRow("gpt_neox")]
    public void LoraGradients_WithAndWithoutCheckpointing_AreBitIdentical(string arch)
    {
        var plain = Run(arch, checkpointing: false);
        var checkpointed = Run(arch, checkpointing: true);
        Assert.AreEqual(plain.Loss, checkpointed.Loss, $"{arch}: loss");
        Assert.AreEqual(plain.Grads.Count, checkpointed.Grads.Count);
        Assert.IsGreaterThan(6, plain.Grads.Count, "LoRA A and B of several linear layers in each of the 3 blocks");
        foreach (var (name, grad) in plain.Grads)
        {
            Assert.IsTrue(grad.Any(v => v != 0), $"{arch}: {name} has a non-zero gradient");
            CollectionAssert.AreEqual(grad, checkpointed.Grads[name], $"{arch}: gradient of {name}");
        }
        Assert.IsTrue(checkpointed.UsedCheckpoints, $"{arch}: the blocks ran under checkpoints");
        Assert.IsFalse(plain.UsedCheckpoints);

        // The masks matter: the same model without dropout gives another loss, so equal gradients above are not an
        // accident of dropout being off.
        var noDropout = Run(arch, checkpointing: true, train: false);
        Assert.AreNotEqual(plain.Loss, noDropout.Loss, $"{arch}: dropout is active in training mode");
    }

    [TestMethod]
    [DataRow("llama")]
    [DataRow("gpt_neox")]
    public void QuantizedBase_KeepingProjectionOutputs_GivesTheSameGradients(string arch)
    {
        var plain = Run(arch, checkpointing: false, quantized: true);
        var full = Run(arch, checkpointing: true, quantized: true);
        var selective = Run(arch, checkpointing: true, quantized: true, keepProjectionOutputs: true);
        Assert.AreEqual(plain.Loss, selective.Loss, $"{arch}: loss");
        Assert.IsTrue(selective.UsedCheckpoints);
        foreach (var (name, grad) in plain.Grads)
        {
            CollectionAssert.AreEqual(grad, full.Grads[name], $"{arch}: gradient of {name}, full recompute");
            CollectionAssert.AreEqual(grad, selective.Grads[name], $"{arch}: gradient of {name}, projection outputs kept");
        }
    }

    [TestMethod]
    [DataRow("llama", "self_attn.o_proj.base_layer", "mlp.down_proj.base_layer")]
    [DataRow("gpt_neox", "attention.dense.base_layer", "mlp.dense_4h_to_h.base_layer")]
    public void KeptProjections_AreTheFourBitBasesOfEachResidualBranchOutput(string arch, string attention, string mlp)
    {
        // Equal gradients above hold whether or not anything is kept; this pins down what is: of a block's 4-bit
        // layers (7 in Llama, 4 in GPT-NeoX, under their LoRA wrappers), exactly the two residual-branch outputs.
        var decoder = Build(arch, checkpointing: true, quantized: true, keepProjectionOutputs: true).Decoder;
        var block = decoder.GetModule("layers.1");
        var names = block.NamedModules().ToDictionary(m => m.Module, m => m.Name);
        var quantized = block.NamedModules().Where(m => m.Module is QuantizedLinear).Select(m => m.Name).ToList();
        Assert.HasCount(arch == "llama" ? 7 : 4, quantized);
        var kept = decoder.KeptProjections(block).Where(m => m is QuantizedLinear).Select(m => names[m]).Order().ToArray();
        CollectionAssert.AreEqual(new[] { attention, mlp }.Order().ToArray(), kept);
    }

    [TestMethod]
    public void Checkpointing_IsSkippedWithoutGradients_AndGivesTheSameOutput()
    {
        var model = Build("llama", checkpointing: true);
        model.Eval();
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var hidden = new List<Tensor>();
        var ids = Tensor.FromInt32([3, 9, 27, 20, 5, 44, 12], 1, 7);
        var output = model.Decoder.Forward(ids, hiddenStates: hidden).ToArray();
        Assert.IsTrue(hidden.All(h => h.GradFn is null));
        model.Decoder.GradientCheckpointing = false;
        CollectionAssert.AreEqual(model.Decoder.Forward(ids).ToArray(), output);
    }

    private static CausalLanguageModel Build(string arch, bool checkpointing, bool quantized = false, bool keepProjectionOutputs = false)
    {
        var config = ModelConfig.Parse(arch switch { "llama" => Llama, "gpt2" => Gpt2, _ => GptNeoX });
        var model = (CausalLanguageModel)PretrainedModel.Create(config, ModelTask.CausalLM, seed: 5);
        if (quantized) QuantizedModel.QuantizeLinearLayers(model);
        model.Decoder.CheckpointKeepsProjectionOutputs = keepProjectionOutputs;
        string[] targets = arch switch
        {
            "llama" => ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
            "gpt2" => ["c_attn", "c_proj", "c_fc"],
            _ => ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
        };
        // Random B so that A gets a gradient too; LoRA dropout draws from its own stream, which must be replayed as well.
        PeftModel.Inject(model, new LoraConfig
        {
            TargetModules = targets, Rank = 4, Alpha = 8, Dropout = 0.25, InitLoraWeights = LoraInit.Random, FanInFanOut = arch == "gpt2",
        }, "default", new Generator(9));
        model.Decoder.GradientCheckpointing = checkpointing;
        return model;
    }

    private static (float Loss, Dictionary<string, float[]> Grads, bool UsedCheckpoints) Run(string arch, bool checkpointing, bool train = true,
        bool quantized = false, bool keepProjectionOutputs = false)
    {
        var model = Build(arch, checkpointing, quantized, keepProjectionOutputs);
        model.Train(train);
        // Two rows, the second left-padded: the key mask travels into the recompute too.
        var ids = Tensor.FromInt32([3, 9, 27, 20, 5, 44, 12, 0, 0, 8, 17, 33, 2, 50], 2, 7);
        var mask = Tensor.FromInt32([1, 1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1], 2, 7);
        var labels = Tensor.FromInt32([9, 27, 20, 5, 44, 12, -100, -100, -100, 17, 33, 2, 50, -100], 2, 7);
        float loss;
        bool usedCheckpoints;
        using (TensorScope.Begin())
        {
            var hidden = new List<Tensor>();
            var logits = model.Project(model.Decoder.Forward(ids, mask, hiddenStates: hidden));
            usedCheckpoints = hidden.Skip(1).All(h => h.GradFn?.Op == "checkpoint");
            var l = CausalLanguageModel.LanguageModelingLoss(logits, labels);
            loss = l.Item();
            if (train) l.Backward();
        }
        var grads = model.NamedParameters().Where(p => p.Parameter.RequiresGrad && p.Parameter.Grad is not null)
            .ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToArray());
        return (loss, grads, usedCheckpoints);
    }
}
