using Microsoft.ML.Peft.AdaptionPrompt;
using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.PrefixTuning;
using Microsoft.ML.Peft.PromptTuning;
using Microsoft.ML.Peft.PTuning;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tests.Models;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Generation;

/// <summary>
/// Generation with a soft prompt attached to stories260K: the KV-cache path (prompt or prefix put into the cache by the
/// first forward, real tokens numbered from n) against the reference that re-runs the full forward over the whole
/// sequence at every step without a cache — logits per step and generated tokens, greedy and sampled.
/// </summary>
[TestClass]
public sealed class PromptGenerationTests
{
    private const int N = 5;

    private static readonly int[] Prompt = [1, 403, 407, 261, 378, 395];

    public static IEnumerable<object[]> Methods =>
    [
        ["PROMPT_TUNING"],
        ["P_TUNING"],
        ["PREFIX_TUNING"],
        ["PREFIX_TUNING+projection"],
        ["ADAPTION_PROMPT"],
    ];

    /// <summary>stories260K with the method injected (random prompts; LLaMA-Adapter's gates opened so it acts).</summary>
    private static CausalLanguageModel WithMethod(string method, string? folder = null)
    {
        var model = PretrainedModel.LoadForCausalLM(folder ?? TestPaths.Stories260K);
        PeftConfig config = method switch
        {
            "PROMPT_TUNING" => new PromptTuningConfig { NumVirtualTokens = N, TaskType = "CAUSAL_LM" },
            "P_TUNING" => new PromptEncoderConfig { NumVirtualTokens = N, EncoderHiddenSize = 16, TaskType = "CAUSAL_LM" },
            "PREFIX_TUNING" => new PrefixTuningConfig { NumVirtualTokens = N, TaskType = "CAUSAL_LM" },
            "PREFIX_TUNING+projection" => new PrefixTuningConfig { NumVirtualTokens = N, PrefixProjection = true, EncoderHiddenSize = 16, TaskType = "CAUSAL_LM" },
            "ADAPTION_PROMPT" => new AdaptionPromptConfig { AdapterLen = N, AdapterLayers = 3, TaskType = "CAUSAL_LM" },
            _ => throw new ArgumentOutOfRangeException(nameof(method)),
        };
        PeftModel.Inject(model, config, generator: new Generator(17));
        foreach (var layer in model.NamedModules().Select(m => m.Module).OfType<AdaptionPromptLayer>())
            layer.Gate("default").AsSpan<float>()[0] = 0.7f;
        model.Eval();
        return model;
    }

    /// <summary>Positions the attached prompt adds in front (virtual tokens or prefix; 0 for LLaMA-Adapter).</summary>
    private static int SoftPromptLength(CausalLanguageModel model) =>
        (model.Decoder.PromptSource?.InputPromptLength ?? 0) + (model.Decoder.PromptSource?.PrefixLength ?? 0);

    [TestMethod]
    [DynamicData(nameof(Methods))]
    public void CachedForward_EqualsTheFullForward_AtEveryStep(string method)
    {
        var model = WithMethod(method);
        int n = SoftPromptLength(model), vocab = model.VocabSize;
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        // Without a cache: input prompts add n leading positions to the logits, prefixes none.
        var full = model.Forward(Tensor.FromInt32(Prompt, 1, Prompt.Length)).ToArray();
        int lead = full.Length / vocab - Prompt.Length;
        Assert.AreEqual(method is "PROMPT_TUNING" or "P_TUNING" ? N : 0, lead, method);
        var cache = model.Decoder.CreateCache(1, n + Prompt.Length);
        var first = model.Forward(Tensor.FromInt32(Prompt[..3], 1, 3), cache: cache).ToArray();
        Assert.AreEqual(n, cache.PromptLength, $"{method}: the cache records the soft prompt");
        Assert.AreEqual(n + 3, cache.Length);
        Close.Assert(full.AsSpan(0, first.Length), first, $"{method} logits of the first 3 tokens", atol: 1e-5, rtol: 1e-5);
        for (int t = 3; t < Prompt.Length; t++)
        {
            var step = model.Forward(Tensor.FromInt32([Prompt[t]], 1, 1), Tensor.FromInt32(Enumerable.Repeat(1, t + 1).ToArray(), 1, t + 1), cache: cache).ToArray();
            Close.Assert(full.AsSpan((lead + t) * vocab, vocab), step, $"{method} logits at token {t}", atol: 1e-5, rtol: 1e-5);
        }
        Assert.AreEqual(n + Prompt.Length, cache.Length);
    }

    [TestMethod]
    [DynamicData(nameof(Methods))]
    public void GreedyAndSampledGeneration_EqualRerunningTheFullForward_TokenForToken(string method)
    {
        var model = WithMethod(method);
        var greedy = new GenerationOptions { MaxNewTokens = 16, EosTokenIds = [] };
        var sampled = greedy with { DoSample = true, Temperature = 0.8f, TopK = 40, TopP = 0.9f, RepetitionPenalty = 1.2f, Seed = 9 };
        foreach (var options in new[] { greedy, sampled })
        {
            var cached = model.Generate(Prompt, options).TokenIds.ToArray();
            var reference = WithoutCache(model, Prompt, options);
            CollectionAssert.AreEqual(reference, cached, $"{method}, sample = {options.DoSample}: cached generation vs the full forward re-run each step");
        }
        var plain = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K).Generate(Prompt, greedy).TokenIds.ToArray();
        CollectionAssert.AreNotEqual(plain, model.Generate(Prompt, greedy).TokenIds.ToArray(), $"{method}: the soft prompt changes what is generated");
    }

    [TestMethod]
    [DataRow("gpt2", "PROMPT_TUNING")]
    [DataRow("gpt2", "PREFIX_TUNING")]
    [DataRow("gpt_neox", "PROMPT_TUNING")]
    [DataRow("gpt_neox", "PREFIX_TUNING")]
    [DataRow("qwen2", "PREFIX_TUNING")]
    public void OtherDecoders_CachedGeneration_EqualsRerunningTheFullForward(string arch, string method)
    {
        // GPT-2 adds absolute position embeddings (wpe) at the offset positions, GPT-NeoX rotates part of each head,
        // Qwen2 has q/k/v biases: the prefix and the virtual tokens must line up with the cache the same way.
        var model = WithMethod(method, TestPaths.Fixture("reference", "models", arch));
        int[] prompt = [5, 17, 3, 44];
        var options = new GenerationOptions { MaxNewTokens = 10, EosTokenIds = [] };
        CollectionAssert.AreEqual(WithoutCache(model, prompt, options), model.Generate(prompt, options).TokenIds.ToArray(), $"{arch} {method}");
        var sampled = options with { DoSample = true, TopK = 0, Seed = 4 };
        CollectionAssert.AreEqual(WithoutCache(model, prompt, sampled), model.Generate(prompt, sampled).TokenIds.ToArray(), $"{arch} {method} sampled");
    }

    [TestMethod]
    [DataRow("PROMPT_TUNING")]
    [DataRow("PREFIX_TUNING")]
    public void LeftPaddedBatch_ContinuesEachRowAsAlone(string method)
    {
        var model = WithMethod(method);
        IReadOnlyList<int>[] prompts = [Prompt, Prompt[..2], [1, 260, 300, 401]];
        var options = new GenerationOptions { MaxNewTokens = 12, EosTokenIds = [] };
        var batched = model.Generate(prompts, options);
        for (int i = 0; i < prompts.Length; i++)
            CollectionAssert.AreEqual(WithoutCache(model, prompts[i], options), batched[i].TokenIds.ToArray(), $"{method}: row {i} of a left-padded batch");
    }

    [TestMethod]
    public void AdaptionPromptWithZeroGate_GeneratesTheBaseModelsText()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        var options = new GenerationOptions { MaxNewTokens = 24 };
        var plain = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K).Generate(tokenizer, "Once upon a time", options);
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        PeftModel.Inject(model, new AdaptionPromptConfig { AdapterLen = N, AdapterLayers = 5, TaskType = "CAUSAL_LM" }, generator: new Generator(3));
        var adapted = model.Generate(tokenizer, "Once upon a time", options);
        Assert.AreEqual(plain.Text, adapted.Text);
        CollectionAssert.AreEqual(plain.TokenIds.ToArray(), adapted.TokenIds.ToArray());
        // With an open gate the same adapter changes the continuation (the comparison above is not vacuous).
        foreach (var layer in model.NamedModules().Select(m => m.Module).OfType<AdaptionPromptLayer>()) layer.Gate("default").AsSpan<float>()[0] = 1f;
        Assert.AreNotEqual(plain.Text, model.Generate(tokenizer, "Once upon a time", options).Text);
    }

    [TestMethod]
    public void CacheFilledWithAPrompt_RefusesAModelWhosePromptChanged()
    {
        var model = WithMethod("PREFIX_TUNING");
        var peftLayer = model.NamedModules().Select(m => m.Module).OfType<PromptEncoderLayer>().Single();
        using var noGrad = Autograd.NoGrad();
        var cache = model.Decoder.CreateCache(1, 16);
        model.Forward(Tensor.FromInt32(Prompt[..2], 1, 2), cache: cache);
        peftLayer.SetActiveAdapters([], trainable: false);
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => model.Forward(Tensor.FromInt32([Prompt[2]], 1, 1), cache: cache));
        StringAssert.Contains(e.Message, $"soft prompt of {N} positions");
        cache.Reset();
        Assert.AreEqual(0, cache.PromptLength);
    }

    /// <summary>
    /// The reference decoder: every step runs the whole sequence (no cache, default positions, no mask) and picks the
    /// next token from the last position's logits with the same selector and random stream as <see cref="TextGeneration"/>.
    /// </summary>
    private static int[] WithoutCache(CausalLanguageModel model, IReadOnlyList<int> prompt, GenerationOptions options)
    {
        var ids = prompt.ToList();
        var seen = new HashSet<int>(prompt);
        var rng = new Generator(options.Seed);
        var order = new int[model.VocabSize];
        var generated = new List<int>();
        using var noGrad = Autograd.NoGrad();
        for (int step = 0; step < options.MaxNewTokens; step++)
        {
            float[] logits;
            using (TensorScope.Begin()) logits = model.Forward(Tensor.FromInt32(ids.ToArray(), 1, ids.Count)).ToArray();
            int next = NextTokenSelector.Select(logits.AsSpan(logits.Length - model.VocabSize), options, rng, seen, order);
            generated.Add(next);
            seen.Add(next);
            ids.Add(next);
        }
        return [.. generated];
    }
}
