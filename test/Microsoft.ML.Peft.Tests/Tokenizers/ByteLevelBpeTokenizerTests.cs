using System.Text;
using System.Text.Json;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// Byte-level BPE on a tiny vocabulary built here, with every expected split worked out by hand from the merge ranks.
/// </summary>
[TestClass]
public sealed class ByteLevelBpeTokenizerTests
{
    // Id = position. "Ġ" is the byte-level character of the space; "Ã" "©" are the characters of é's bytes C3 A9.
    private static readonly string[] Vocabulary =
        ["l", "o", "w", "e", "r", "Ġ", "s", "t", "a", "b", "c", "lo", "low", "er", "Ġl", "es", "lower", "est", "Ġlow", "aa", "bc", "ab",
         "<|endoftext|>", "Ã", "©", "Ã©"];

    private static readonly string[] Merges =
        ["l o", "lo w", "e r", "Ġ l", "e s", "low er", "es t", "Ġ low", "b c", "a b", "a a", "Ã ©"];

    private static ByteLevelBpeTokenizer Create(bool addPrefixSpace = false)
    {
        var vocab = JsonSerializer.SerializeToUtf8Bytes(Vocabulary.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i));
        var merges = Encoding.UTF8.GetBytes("#version: 0.2\n" + string.Join("\n", Merges) + "\n");
        return ByteLevelBpeTokenizer.Create(new MemoryStream(vocab), new MemoryStream(merges),
            new ByteLevelBpeOptions { AddPrefixSpace = addPrefixSpace, SpecialTokens = ["<|endoftext|>"] });
    }

    private static int Id(string token) => Array.IndexOf(Vocabulary, token);

    [TestMethod]
    public void MergesApplyInRankOrder()
    {
        var tokenizer = Create();
        // "lower": lo (rank 0), low (1), er (2), lower (5).
        CollectionAssert.AreEqual(new[] { Id("lower") }, tokenizer.EncodeToIds("lower").ToArray());
        // " lowest" = Ġ l o w e s t: lo, low; "Ġ l" (3) no longer applies; es (4), est (6), Ġlow (7).
        CollectionAssert.AreEqual(new[] { Id("lower"), Id("Ġlow"), Id("est") }, tokenizer.EncodeToIds("lower lowest").ToArray());
        // "abc": "b c" (8) outranks "a b" (9), so a + bc, not ab + c.
        CollectionAssert.AreEqual(new[] { Id("a"), Id("bc") }, tokenizer.EncodeToIds("abc").ToArray());
        // "aaa": both "a a" pairs have rank 10; the leftmost merges first.
        CollectionAssert.AreEqual(new[] { Id("aa"), Id("a") }, tokenizer.EncodeToIds("aaa").ToArray());
        // "é" is bytes C3 A9, i.e. "Ã©", merged by rank 11.
        CollectionAssert.AreEqual(new[] { Id("a"), Id("Ã©") }, tokenizer.EncodeToIds("aé").ToArray());
    }

    [TestMethod]
    public void SpecialTokensAreMatchedBeforePreTokenization()
    {
        var tokenizer = Create();
        CollectionAssert.AreEqual(new[] { Id("lower"), Id("<|endoftext|>"), Id("a"), Id("bc") }, tokenizer.EncodeToIds("lower<|endoftext|>abc").ToArray());
        Assert.AreEqual("lowerabc", tokenizer.Decode(tokenizer.EncodeToIds("lower<|endoftext|>abc"), skipSpecialTokens: true));
        Assert.AreEqual("lower<|endoftext|>abc", tokenizer.Decode(tokenizer.EncodeToIds("lower<|endoftext|>abc")));
    }

    [TestMethod]
    public void OffsetsCoverWholeCharacters()
    {
        var tokenizer = Create();
        const string text = "lower lowest aé";
        var tokens = tokenizer.EncodeToTokens(text, out _);
        CollectionAssert.AreEqual(new[] { "lower", " low", "est", " ", "a", "é" }, tokens.Select(t => text[t.Offset]).ToArray());
        Assert.AreEqual(text, tokenizer.Decode(tokens.Select(t => t.Id)));
    }

    [TestMethod]
    public void AddPrefixSpaceEncodesTheFirstWordLikeALaterOne()
    {
        var tokenizer = Create(addPrefixSpace: true);
        // " lower" = Ġ l o w e r: lo, low, er, lower; "Ġ low" never applies because low became lower first.
        var tokens = tokenizer.EncodeToTokens("lower", out string? normalized);
        CollectionAssert.AreEqual(new[] { Id("Ġ"), Id("lower") }, tokens.Select(t => t.Id).ToArray());
        Assert.AreEqual(" lower", normalized);
        Assert.AreEqual(new Range(0, 0), tokens[0].Offset, "the added space has no original character");
        Assert.AreEqual(new Range(0, 5), tokens[1].Offset);
    }

    [TestMethod]
    public void MergeNamingAnUnknownTokenIsRejected()
    {
        var vocab = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, int> { ["a"] = 0, ["b"] = 1 });
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() =>
            ByteLevelBpeTokenizer.Create(new MemoryStream(vocab), new MemoryStream("a b\n"u8.ToArray())));
        StringAssert.Contains(e.Message, "'ab'");
        StringAssert.Contains(e.Message, "merges[0]");
    }

    [TestMethod]
    public void ConcurrentEncodingAgreesWithSequential()
    {
        // The word cache is shared; many threads filling it at once must not change any result.
        var tokenizer = TokenizerLoader.FromFolder(TokenizerFixtures.Path("bytelevel", "gpt2"));
        var corpus = TokenizerFixtures.Corpus;
        var sequential = corpus.Select(t => string.Join(' ', tokenizer.EncodeToIds(t))).ToArray();
        var fresh = TokenizerLoader.FromFolder(TokenizerFixtures.Path("bytelevel", "gpt2"));
        var parallel = new string[corpus.Count];
        Parallel.For(0, corpus.Count, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => parallel[i] = string.Join(' ', fresh.EncodeToIds(corpus[i])));
        CollectionAssert.AreEqual(sequential, parallel);
    }
}
