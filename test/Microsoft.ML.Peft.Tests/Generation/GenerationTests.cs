using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Generation;

/// <summary>KV-cache decoding, batching with left padding, stopping rules and sampling of <see cref="TextGeneration"/>.</summary>
[TestClass]
public sealed class GenerationTests
{
    private static readonly Lazy<CausalLanguageModel> Stories = new(() => PretrainedModel.LoadForCausalLM(TestPaths.Stories260K));

    [TestMethod]
    [DataRow("gpt2")]
    [DataRow("gpt_neox")]
    [DataRow("llama_gqa")]
    [DataRow("qwen2")]
    public void IncrementalDecodingWithCache_EqualsTheFullForward(string arch)
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Fixture("reference", "models", arch));
        int[] ids = [5, 17, 3, 44, 9, 21, 8];
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var full = model.Forward(Tensor.FromInt32(ids, 1, ids.Length)).ToArray();
        var cache = model.Decoder.CreateCache(1, ids.Length);
        // Prompt of 3 tokens, then one token at a time.
        var first = model.Forward(Tensor.FromInt32(ids[..3], 1, 3), cache: cache).ToArray();
        Close.Assert(full.AsSpan(0, first.Length), first, $"{arch} prompt logits", atol: 1e-5, rtol: 1e-5);
        for (int t = 3; t < ids.Length; t++)
        {
            var step = model.Forward(Tensor.FromInt32([ids[t]], 1, 1), cache: cache).ToArray();
            Close.Assert(full.AsSpan(t * model.VocabSize, model.VocabSize), step, $"{arch} logits at position {t}", atol: 1e-5, rtol: 1e-5);
        }
        Assert.AreEqual(ids.Length, cache.Length);
    }

    [TestMethod]
    public void BatchedPromptsOfDifferentLengths_ContinueExactlyAsAlone()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        string[] texts = ["Once upon a time", "The cat sat on the mat.", "Lily and Ben went to the park to play with a red ball."];
        var prompts = texts.Select(t => (IReadOnlyList<int>)tokenizer.Encode(t).InputIds).ToList();
        var options = new GenerationOptions { MaxNewTokens = 30 };
        var batched = Stories.Value.Generate(prompts, options);
        for (int i = 0; i < prompts.Count; i++)
        {
            var alone = Stories.Value.Generate(prompts[i], options);
            CollectionAssert.AreEqual(alone.TokenIds.ToArray(), batched[i].TokenIds.ToArray(), $"prompt {i} ('{texts[i]}') left-padded in a batch");
        }
    }

    [TestMethod]
    public void EndOfSequenceToken_StopsAndIsKept()
    {
        int[] prompt = [1, 403, 407, 261, 378];
        var free = Stories.Value.Generate(prompt, new GenerationOptions { MaxNewTokens = 10 });
        int eos = free.TokenIds[3];
        var stopped = Stories.Value.Generate(prompt, new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [eos] });
        Assert.AreEqual(GenerationStopReason.EndOfSequence, stopped.StopReason);
        int first = free.TokenIds.ToList().IndexOf(eos);
        CollectionAssert.AreEqual(free.TokenIds.Take(first + 1).ToArray(), stopped.TokenIds.ToArray());
    }

    [TestMethod]
    public void StopString_StopsOnTheTokenThatCompletesIt()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        var full = Stories.Value.Generate(tokenizer, "Once upon a time", new GenerationOptions { MaxNewTokens = 40 });
        StringAssert.Contains(full.Text, "Lily");
        var result = Stories.Value.Generate(tokenizer, "Once upon a time", new GenerationOptions { MaxNewTokens = 40, StopStrings = ["Lily"] });
        Assert.AreEqual(GenerationStopReason.StopString, result.StopReason);
        StringAssert.EndsWith(result.Text, "Lily");
        StringAssert.StartsWith(full.Text, result.Text);
        Assert.IsFalse(tokenizer.Decode(result.TokenIds.Take(result.TokenIds.Count - 1), skipSpecialTokens: true).Contains("Lily", StringComparison.Ordinal),
            "one token earlier the stop string was not there yet");
    }

    [TestMethod]
    public void Sampling_IsReproduciblePerSeed_AndTopKOneIsGreedy()
    {
        int[] prompt = [1, 403, 407, 261, 378];
        var sampling = new GenerationOptions { MaxNewTokens = 25, DoSample = true, Temperature = 1.3f, TopK = 0, TopP = 0.95f, Seed = 7 };
        var a = Stories.Value.Generate(prompt, sampling);
        var b = Stories.Value.Generate(prompt, sampling);
        CollectionAssert.AreEqual(a.TokenIds.ToArray(), b.TokenIds.ToArray(), "same seed, same tokens");
        var c = Stories.Value.Generate(prompt, sampling with { Seed = 8 });
        CollectionAssert.AreNotEqual(a.TokenIds.ToArray(), c.TokenIds.ToArray(), "another seed samples another continuation");

        var greedy = Stories.Value.Generate(prompt, new GenerationOptions { MaxNewTokens = 25 });
        var topOne = Stories.Value.Generate(prompt, sampling with { TopK = 1, TopP = 1f });
        CollectionAssert.AreEqual(greedy.TokenIds.ToArray(), topOne.TokenIds.ToArray(), "top-k = 1 leaves only the argmax");
    }

    [TestMethod]
    public void Generation_RestoresTrainingMode_AndRejectsBadInput()
    {
        var model = Stories.Value;
        model.Train();
        try
        {
            model.Generate([1, 403], new GenerationOptions { MaxNewTokens = 2 });
            Assert.IsTrue(model.IsTraining);
        }
        finally
        {
            model.Eval();
        }
        Assert.Throws<ArgumentException>(() => model.Generate(Array.Empty<int>()));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Generate([1, 600]));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Generate([1], new GenerationOptions { DoSample = true, Temperature = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => model.Generate([1], new GenerationOptions { TopP = 0 }));
        Assert.Throws<ArgumentException>(() => model.Generate([1], new GenerationOptions { StopStrings = ["x"] }), "stop strings need a decoder");
    }
}
