using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// The real stories260K Llama (../shared/models/stories260K) against PyTorch (Fixtures/reference/stories260k, written by
/// build/reference/stories260k_reference.py) and the test vectors of ../shared/models/README.md.
/// </summary>
[TestClass]
public sealed class Stories260KTests
{
    private static readonly Lazy<CausalLanguageModel> Model = new(() => PretrainedModel.LoadForCausalLM(TestPaths.Stories260K));

    [TestMethod]
    [DataRow("prompt0")]
    [DataRow("prompt1")]
    [DataRow("prompt2")]
    public void PromptLogits_MatchPyTorch_Within1e4(string prompt)
    {
        using var fx = ReferenceFixture.Open("stories260k/stories260k.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = fx.Ints(prompt + ".input_ids");
        var logits = Model.Value.Forward(Tensor.FromInt32(ids, 1, ids.Length));
        Close.Assert(fx.Float(prompt + ".logits").Reshape(1, ids.Length, 512), logits, prompt + " logits", atol: 1e-4, rtol: 0);
    }

    [TestMethod]
    public void ReadmeTestVector_Top5LogitsForBos()
    {
        (int Id, float Logit)[] expected = [(403, 17.0235f), (385, 15.4062f), (410, 13.1083f), (317, 12.7692f), (407, 12.4181f)];
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var logits = Model.Value.Forward(Tensor.FromInt32([1], 1, 1)).ToArray();
        var top5 = logits.Select((l, i) => (Id: i, Logit: l)).OrderByDescending(p => p.Logit).Take(5).ToArray();
        for (int i = 0; i < 5; i++)
        {
            Assert.AreEqual(expected[i].Id, top5[i].Id, $"rank {i}");
            Assert.AreEqual(expected[i].Logit, top5[i].Logit, 1e-4, $"logit of token {expected[i].Id}");
        }
    }

    [TestMethod]
    public void NegativeLogLikelihood_MatchesReadme()
    {
        using var fx = ReferenceFixture.Open("stories260k/stories260k.safetensors");
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = fx.Ints("nll.input_ids");
        var logits = Model.Value.Forward(Tensor.FromInt32(ids, 1, ids.Length));
        var labels = ids.Select((id, i) => i == 0 ? -100 : id).ToArray();
        float mean = CausalLanguageModel.LanguageModelingLoss(logits, Tensor.FromInt32(labels, 1, ids.Length)).Item();
        Assert.AreEqual(fx.Floats("nll.mean")[0], mean, 1e-5, "mean NLL vs PyTorch");
        Assert.AreEqual(0.324, mean, 5e-4, "README: NLL ≈ 0.324 nats/token");
        var perToken = logits.Narrow(1, 0, ids.Length - 1).CrossEntropy(Tensor.FromInt32(labels[1..], 1, ids.Length - 1), reduction: Reduction.None);
        Close.Assert(fx.Float("nll.token_nll").Reshape(1, ids.Length - 1), perToken, "per-token NLL", atol: 1e-4, rtol: 0);
    }

    [TestMethod]
    public void GreedyGeneration_ReproducesTheReference200Tokens()
    {
        using var fx = ReferenceFixture.Open("stories260k/stories260k.safetensors");
        var prompt = fx.Ints("greedy.input_ids");
        var expected = fx.Ints("greedy.generated_ids");
        var result = Model.Value.Generate(prompt, new GenerationOptions { MaxNewTokens = 200 });
        CollectionAssert.AreEqual(expected, result.TokenIds.ToArray(), "greedy continuation (KV cache) vs PyTorch full recomputation");
        Assert.AreEqual(GenerationStopReason.MaxNewTokens, result.StopReason);
    }

    [TestMethod]
    public void GreedyGenerationFromText_DecodesToTheReferenceContinuation()
    {
        using var fx = ReferenceFixture.Open("stories260k/stories260k.safetensors");
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        var result = Model.Value.Generate(tokenizer, "Once upon a time", new GenerationOptions { MaxNewTokens = 200 });
        CollectionAssert.AreEqual(fx.Ints("greedy.generated_ids"), result.TokenIds.ToArray(), "the tokenizer adds BOS as the reference did");
        Assert.AreEqual(fx.Json.GetProperty("greedy").GetProperty("decoded_generation").GetString(), result.Text);
    }

    [TestMethod]
    public void LoadIsZeroCopy_AndTiedHeadHasNoParameter()
    {
        var model = Model.Value;
        Assert.IsTrue(model.TiedEmbeddings);
        Assert.AreEqual(0, model.HeadModuleNames.Count);
        Assert.AreEqual(model.NamedParameters().Count(), model.LoadReport!.ZeroCopyParameters);
        Assert.AreEqual(0, model.LoadReport.InitializedParameters.Count);
        Assert.AreEqual(0, model.LoadReport.UnexpectedKeys.Count);
        Assert.IsFalse(model.IsTraining, "loaded models are in evaluation mode");
    }
}
