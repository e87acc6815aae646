using Microsoft.ML.Peft.IO;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Tensors;
using Microsoft.ML.Peft.Tuners;
using static Microsoft.ML.Peft.Tests.Lora.LoraFixtures;

namespace Microsoft.ML.Peft.Tests.PromptTuning;

[TestClass]
public sealed class PromptTuningTests
{
    // Vocabulary 10 × hidden 4 = 40, classifier 4·2 + 2 = 10: 50 base parameters.
    private const int Vocab = 10;
    private const int Hidden = 4;

    private static Tensor Ids() => Tensor.FromInt32([3, 1, 4, 1, 5, 9, 2, 6], 2, 4);

    private static Tensor Mask() => Tensor.FromInt32([1, 1, 1, 0, 1, 1, 0, 0], 2, 4);

    [TestMethod]
    public void Create_CountsThePromptAsPeft_AndFreezesTheModel()
    {
        var model = new MeanPoolClassifier(new Generator(1));
        var prompted = PromptTuningModel.Create(model, new PromptTuningConfig { NumVirtualTokens = 3 });
        Assert.AreEqual((12L, 62L), prompted.GetNumberOfTrainableParameters());
        Assert.AreEqual("trainable params: 12 || all params: 62 || trainable%: 19.3548", prompted.TrainableParametersSummary());
        var writer = new StringWriter();
        prompted.PrintTrainableParameters(writer);
        Assert.AreEqual(prompted.TrainableParametersSummary() + Environment.NewLine, writer.ToString());
        Assert.IsTrue(model.Parameters().All(p => !p.RequiresGrad));
        Assert.AreEqual(Hidden, prompted.Config.TokenDim, "token_dim taken from the model");
        CollectionAssert.AreEqual(new[] { 3, Hidden }, prompted.PromptEmbeddings.ShapeArray());
    }

    [TestMethod]
    public void TextInit_CopiesTheWordEmbeddingsOfTheRepeatedIds_SampleVocabCopiesVocabularyRows()
    {
        var model = new MeanPoolClassifier(new Generator(2));
        var text = PromptTuningModel.Create(model, new PromptTuningConfig { NumVirtualTokens = 5, Init = PromptTuningInit.Text, InitText = "x y" }, initTextTokenIds: [7, 2]);
        var table = model.InputEmbeddingWeight.ToArray();
        var prompt = text.PromptEmbeddings.ToArray();
        int[] expectedIds = [7, 2, 7, 2, 7]; // PEFT: ids * ceil(5 / 2), cut to 5
        for (int row = 0; row < 5; row++)
            CollectionAssert.AreEqual(table.AsSpan(expectedIds[row] * Hidden, Hidden).ToArray(), prompt.AsSpan(row * Hidden, Hidden).ToArray(), $"row {row}");

        var sampled = PromptTuningModel.Create(model, new PromptTuningConfig { NumVirtualTokens = 4, Init = PromptTuningInit.SampleVocab }, new Generator(3)).PromptEmbeddings.ToArray();
        for (int row = 0; row < 4; row++)
        {
            var values = sampled.AsSpan(row * Hidden, Hidden).ToArray();
            Assert.IsTrue(Enumerable.Range(0, Vocab).Any(v => table.AsSpan(v * Hidden, Hidden).SequenceEqual(values)), $"row {row} is a vocabulary row");
        }
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PromptTuningModel.Create(model, new PromptTuningConfig { NumVirtualTokens = 2, Init = PromptTuningInit.Text, InitText = "x" }));
        StringAssert.Contains(e.Message, "pass the tokenizer's ids");
    }

    [TestMethod]
    public void Forward_PrependsThePromptAndExtendsTheMask_AsTheHandComputation()
    {
        var model = new MeanPoolClassifier(new Generator(4));
        var prompted = PromptTuningModel.Create(model, new PromptTuningConfig { NumVirtualTokens = 2 }, new Generator(5));
        Tensor logits;
        using (Autograd.NoGrad()) logits = prompted.Forward(Ids(), Mask());
        float[] table = model.InputEmbeddingWeight.ToArray(), p = prompted.PromptEmbeddings.ToArray();
        float[] w = model.Head.Weight.ToArray(), b = model.Head.Bias!.ToArray(), y = logits.ToArray();
        int[] ids = Ids().ToInt32Array(), mask = Mask().ToInt32Array();
        for (int row = 0; row < 2; row++)
        {
            // Mean over the 2 prompt vectors and the unmasked tokens, then the linear head, in double.
            var pooled = new double[Hidden];
            int count = 2;
            for (int h = 0; h < Hidden; h++) pooled[h] = p[h] + p[Hidden + h];
            for (int t = 0; t < 4; t++)
            {
                if (mask[row * 4 + t] == 0) continue;
                count++;
                for (int h = 0; h < Hidden; h++) pooled[h] += table[ids[row * 4 + t] * Hidden + h];
            }
            for (int c = 0; c < 2; c++)
            {
                double expected = b[c];
                for (int h = 0; h < Hidden; h++) expected += pooled[h] / count * w[c * Hidden + h];
                Assert.AreEqual(expected, y[row * 2 + c], 1e-5, $"row {row} class {c}");
            }
        }
        CollectionAssert.AreEqual(new[] { 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0, 0 }, prompted.ExtendAttentionMask(Mask(), 2, 4)!.ToInt32Array());
    }

    [TestMethod]
    public void Gradients_ReachOnlyThePrompt_AndMatchFiniteDifferences()
    {
        var model = new MeanPoolClassifier(new Generator(6));
        var prompted = PromptTuningModel.Create(model, new PromptTuningConfig { NumVirtualTokens = 2 }, new Generator(7));
        prompted.Forward(Ids(), Mask()).Sum().Backward();
        Assert.IsNotNull(prompted.PromptEmbeddings.Grad);
        Assert.IsTrue(model.Parameters().All(p => p.Grad is null));
        Assert.AreEqual(1, prompted.TrainableParameters().Count());
        GradCheck.Check(_ => prompted.Forward(Ids(), Mask()), [prompted.PromptEmbeddings]);
    }

    [TestMethod]
    public void SaveLoad_WritesPromptEmbeddings_AndReproducesOutputsBitForBit()
    {
        string dir = Path.Combine(Path.GetTempPath(), "prompt-" + Guid.NewGuid().ToString("N"));
        try
        {
            var prompted = PromptTuningModel.Create(new MeanPoolClassifier(new Generator(8)), new PromptTuningConfig { NumVirtualTokens = 3 }, new Generator(9));
            Tensor expected;
            using (Autograd.NoGrad()) expected = prompted.Forward(Ids(), Mask());
            prompted.SavePretrained(dir);
            using (var file = SafeTensorsFile.Open(Path.Combine(dir, PeftModel.WeightsFileName)))
            {
                CollectionAssert.AreEqual(new[] { "prompt_embeddings" }, file.Names.ToArray());
                Assert.IsTrue(file.TryGetTensor("prompt_embeddings", out var view));
                CollectionAssert.AreEqual(new[] { 3, Hidden }, view.Shape.ToArray());
            }
            string json = File.ReadAllText(Path.Combine(dir, PeftConfig.ConfigFileName));
            StringAssert.Contains(json, "\"peft_type\": \"PROMPT_TUNING\"");
            StringAssert.Contains(json, "\"num_virtual_tokens\": 3");
            StringAssert.Contains(json, "\"token_dim\": 4");
            StringAssert.Contains(json, "\"prompt_tuning_init\": \"RANDOM\"");

            var reloaded = PromptTuningModel.FromPretrained(new MeanPoolClassifier(new Generator(8)), dir);
            Tensor actual;
            using (Autograd.NoGrad()) actual = reloaded.Forward(Ids(), Mask());
            AssertBitIdentical(expected, actual, "reloaded prompt");
            Assert.AreEqual(0, reloaded.TrainableParameters().Count(), "loaded frozen");

            var e = Assert.ThrowsExactly<PeftConfigException>(() => PromptTuningModel.FromPretrained(new MeanPoolClassifier(new Generator(8), hidden: 6), dir));
            StringAssert.Contains(e.Message, "token_dim 4 does not match the model's hidden size 6");
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public void ConfigJson_ReadsPeftsPromptTuningFile_AndModelsWithoutTheHookAreRefused()
    {
        const string peftJson = """
            {"base_model_name_or_path": "gpt2", "inference_mode": true, "num_attention_heads": 12, "num_layers": 12,
             "num_transformer_submodules": 1, "num_virtual_tokens": 8, "peft_type": "PROMPT_TUNING", "prompt_tuning_init": "TEXT",
             "prompt_tuning_init_text": "Classify:", "revision": null, "task_type": "CAUSAL_LM", "token_dim": 768,
             "tokenizer_kwargs": null, "tokenizer_name_or_path": "gpt2"}
            """;
        var config = (PromptTuningConfig)PeftConfig.FromJson(peftJson);
        Assert.AreEqual(8, config.NumVirtualTokens);
        Assert.AreEqual(768, config.TokenDim);
        Assert.AreEqual(PromptTuningInit.Text, config.Init);
        Assert.AreEqual("Classify:", config.InitText);
        Assert.AreEqual(config.ToJson(), PeftConfig.FromJson(config.ToJson()).ToJson());
        var e = Assert.ThrowsExactly<PeftConfigException>(() => PeftConfig.FromJson("""{"peft_type": "PROMPT_TUNING", "num_virtual_tokens": 2, "num_transformer_submodules": 2}""", "p.json"));
        StringAssert.Contains(e.Message, "p.json: num_transformer_submodules = 2 is not supported");

        e = Assert.ThrowsExactly<PeftConfigException>(() => PromptTuningModel.Create(new Linear(2, 2, new Generator(1)), new PromptTuningConfig { NumVirtualTokens = 2 }));
        StringAssert.Contains(e.Message, "IInputEmbeddingsModel");
        StringAssert.Contains(e.Message, "Linear does not");
        e = Assert.ThrowsExactly<PeftConfigException>(() => PeftModel.Inject(new MeanPoolClassifier(new Generator(1)), new PromptTuningConfig { NumVirtualTokens = 2 }));
        StringAssert.Contains(e.Message, "PROMPT_TUNING needs a transformer backbone");
    }

    /// <summary>Embedding → masked mean over the sequence → linear head: the smallest model with the prompt hook.</summary>
    private sealed class MeanPoolClassifier : Module, IInputEmbeddingsModel
    {
        private readonly ModuleSlot<Embedding> embeddings;
        private readonly ModuleSlot<LinearLayer> head;

        public MeanPoolClassifier(Generator g, int hidden = Hidden)
        {
            embeddings = RegisterModule("embed_tokens", new Embedding(Vocab, hidden, g));
            head = RegisterModule<LinearLayer>("classifier", new Linear(hidden, 2, g));
        }

        public Linear Head => (Linear)head.Module;

        public int HiddenSize => embeddings.Module.Weight.Size(1);

        public Tensor InputEmbeddingWeight => embeddings.Module.Weight;

        public Tensor Embed(Tensor inputIds) => embeddings.Module.Forward(inputIds);

        public Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask)
        {
            int batch = inputsEmbeds.Size(0), seq = inputsEmbeds.Size(1);
            var weights = attentionMask is null
                ? Tensor.Ones(batch, seq)
                : Tensor.From(attentionMask.ToInt32Array().Select(v => (float)v).ToArray(), batch, seq);
            var pooled = inputsEmbeds.Mul(weights.Unsqueeze(2)).Sum(1).Div(weights.Sum(1, keepDim: true));
            return head.Module.Forward(pooled);
        }
    }
}
