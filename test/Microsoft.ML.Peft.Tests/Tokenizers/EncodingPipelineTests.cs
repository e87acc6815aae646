using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// Pair encoding, special-token templates, truncation and padding. BERT ids are bert-base-uncased's (hello 7592,
/// world 2088, una 14477, ##ffa 20961, ##ble 3468, [CLS] 101, [SEP] 102, [PAD] 0).
/// </summary>
[TestClass]
public sealed class EncodingPipelineTests
{
    private static readonly Lazy<Tokenizer> s_bert = new(() => TokenizerLoader.FromFolder(TestPaths.BertTokenizer));
    private static readonly Lazy<Tokenizer> s_llama = new(() => TokenizerLoader.FromFolder(TestPaths.Stories260K));

    private static Tokenizer Bert => s_bert.Value;

    /// <summary>
    /// The Hugging Face tokenizers longest_first table for a budget of 7 (sequence lengths 0, 2, 4, 8 in every
    /// combination, from tokenizers/src/utils/truncation.rs): the shorter sequence stays whole when the longer can
    /// absorb the cut, otherwise each gets half and the second the odd token.
    /// </summary>
    [TestMethod]
    [DataRow(0, 0, 0, 0), DataRow(0, 2, 0, 2), DataRow(0, 4, 0, 4), DataRow(0, 8, 0, 7)]
    [DataRow(2, 0, 2, 0), DataRow(2, 2, 2, 2), DataRow(2, 4, 2, 4), DataRow(2, 8, 2, 5)]
    [DataRow(4, 0, 4, 0), DataRow(4, 2, 4, 2), DataRow(4, 4, 3, 4), DataRow(4, 8, 3, 4)]
    [DataRow(8, 0, 7, 0), DataRow(8, 2, 5, 2), DataRow(8, 4, 4, 3), DataRow(8, 8, 3, 4)]
    public void LongestFirst_MatchesHuggingFaceTable(int first, int second, int keepFirst, int keepSecond)
    {
        Assert.AreEqual((keepFirst, keepSecond), Tokenizer.TruncatedLengths(first, second, true, 7, TruncationStrategy.LongestFirst));
    }

    [TestMethod]
    public void BertPair_HasClsSepTemplateAndSegmentIds()
    {
        var input = Bert.Encode("hello world", "unaffable");
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102, 14477, 20961, 3468, 102 }, input.InputIds);
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 1, 1, 1, 1 }, input.TokenTypeIds);
        CollectionAssert.AreEqual(new[] { 1, 1, 1, 1, 1, 1, 1, 1 }, input.AttentionMask);
        CollectionAssert.AreEqual(new[] { 1, 0, 0, 1, 0, 0, 0, 1 }, input.SpecialTokensMask);
        var plain = Bert.Encode("hello world", "unaffable", new EncodeOptions { AddSpecialTokens = false });
        CollectionAssert.AreEqual(new[] { 7592, 2088, 14477, 20961, 3468 }, plain.InputIds);
        CollectionAssert.AreEqual(new[] { 0, 0, 1, 1, 1 }, plain.TokenTypeIds);
    }

    [TestMethod]
    public void TruncationStrategies()
    {
        // Budget 6 - 3 specials = 3 for A = 2 tokens, B = 3 tokens: longest_first gives 1 and 2.
        CollectionAssert.AreEqual(new[] { 101, 7592, 102, 14477, 20961, 102 },
            Bert.Encode("hello world", "unaffable", new EncodeOptions { MaxLength = 6 }).InputIds);
        CollectionAssert.AreEqual(new[] { 101, 7592, 102, 14477, 20961, 3468, 102 },
            Bert.Encode("hello world", "unaffable", new EncodeOptions { MaxLength = 7, Truncation = TruncationStrategy.OnlyFirst }).InputIds);
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102, 14477, 20961, 102 },
            Bert.Encode("hello world", "unaffable", new EncodeOptions { MaxLength = 7, Truncation = TruncationStrategy.OnlySecond }).InputIds);
        CollectionAssert.AreEqual(new[] { 101, 20961, 3468, 102 },
            Bert.Encode("hello world unaffable", options: new EncodeOptions { MaxLength = 4, TruncationSide = TruncationSide.Left }).InputIds);
        Assert.HasCount(7, Bert.Encode("hello world unaffable", options: new EncodeOptions { MaxLength = 4, Truncation = TruncationStrategy.DoNotTruncate }).InputIds);
        var e = Assert.ThrowsExactly<ArgumentException>(() =>
            Bert.Encode("hello world", "unaffable", new EncodeOptions { MaxLength = 5, Truncation = TruncationStrategy.OnlyFirst }));
        StringAssert.Contains(e.Message, "first sequence");
    }

    [TestMethod]
    public void BatchIsPaddedRowMajorWithMasks()
    {
        var batch = Bert.EncodeBatch(["hello world", "unaffable hello world"]);
        Assert.AreEqual(2, batch.BatchSize);
        Assert.AreEqual(7, batch.SequenceLength);
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102, 0, 0, 0, 101, 14477, 20961, 3468, 7592, 2088, 102 }, batch.InputIds);
        CollectionAssert.AreEqual(new[] { 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1 }, batch.AttentionMask);
        CollectionAssert.AreEqual(new int[14], batch.TokenTypeIds);
        CollectionAssert.AreEqual(new[] { 4, 7 }, batch.Lengths);
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102, 0, 0, 0 }, batch.InputIdsRow(0).ToArray());
    }

    [TestMethod]
    public void LeftPaddingToMaxLengthRoundedToAMultiple()
    {
        var batch = Bert.EncodeBatch(["hello world"], null,
            new EncodeOptions { MaxLength = 6, Padding = PaddingStrategy.MaxLength, PaddingSide = PaddingSide.Left, PadToMultipleOf = 4 });
        Assert.AreEqual(8, batch.SequenceLength);
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 101, 7592, 2088, 102 }, batch.InputIds);
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 1, 1, 1, 1 }, batch.AttentionMask);
    }

    [TestMethod]
    public void BatchOfPairsTruncatesEachRow()
    {
        var batch = Bert.EncodeBatch(["hello world", "hello"], ["unaffable", "world"], new EncodeOptions { MaxLength = 6 });
        Assert.AreEqual(6, batch.SequenceLength);
        CollectionAssert.AreEqual(new[] { 101, 7592, 102, 14477, 20961, 102, 101, 7592, 102, 2088, 102, 0 }, batch.InputIds);
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1, 0 }, batch.TokenTypeIds);
    }

    [TestMethod]
    public void LlamaTemplateFromConfigPrependsBosToEachSequence()
    {
        var input = s_llama.Value.Encode("Hello world!", "Hello world!");
        CollectionAssert.AreEqual(new[] { 1, 346, 306, 414, 263, 304, 341, 443, 1, 346, 306, 414, 263, 304, 341, 443 }, input.InputIds);
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, input.TokenTypeIds);
    }

    [TestMethod]
    public void LlamaHasNoPadTokenSoPaddingNeedsAnExplicitId()
    {
        string[] texts = ["Hello world!", "Hello"];
        var e = Assert.ThrowsExactly<InvalidOperationException>(() => s_llama.Value.EncodeBatch(texts));
        StringAssert.Contains(e.Message, "PaddingTokenId");
        var batch = s_llama.Value.EncodeBatch(texts, null, new EncodeOptions { PaddingTokenId = 2, PaddingSide = PaddingSide.Left });
        // "Hello" is ▁He ll o (346 306 414) after BOS; it is padded on the left to the 8 positions of the first row.
        CollectionAssert.AreEqual(new[] { 2, 2, 2, 2, 1, 346, 306, 414 }, batch.InputIdsRow(1).ToArray());
        CollectionAssert.AreEqual(new[] { 0, 0, 0, 0, 1, 1, 1, 1 }, batch.AttentionMaskRow(1).ToArray());
    }

    [TestMethod]
    public void RobertaPairTemplate()
    {
        var roberta = TokenizerLoader.FromFolder(TokenizerFixtures.Path("bytelevel", "roberta"));
        int bos = roberta.TokenToId("<s>")!.Value, eos = roberta.TokenToId("</s>")!.Value;
        int[] a = [.. roberta.EncodeToIds("a")], b = [.. roberta.EncodeToIds("b")];
        var input = roberta.Encode("a", "b");
        CollectionAssert.AreEqual((int[])[bos, .. a, eos, eos, .. b, eos], input.InputIds);
        CollectionAssert.AreEqual(new int[input.Length], input.TokenTypeIds);
        Assert.AreEqual(roberta.TokenToId("<pad>"), roberta.PaddingTokenId);
    }

    [TestMethod]
    public void BadBatchArgumentsAreRejectedNamingTheProblem()
    {
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Bert.EncodeBatch(["a", null!])).Message, "texts[1]");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Bert.EncodeBatch(["a", "b"], ["c"])).Message, "textPairs has 1");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Bert.EncodeBatch(["a"], null, new EncodeOptions { MaxLength = 1 })).Message, "special tokens");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Bert.EncodeBatch(["a", "a b"], null, new EncodeOptions { Padding = PaddingStrategy.DoNotPad })).Message, "row 0");
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => Bert.EncodeBatch(["a"], null, new EncodeOptions { Padding = PaddingStrategy.MaxLength })).Message, "MaxLength");
    }
}
