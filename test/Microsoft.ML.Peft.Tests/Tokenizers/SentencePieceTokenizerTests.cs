using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// Hand-checked SentencePiece behaviour on stories260K: the published test vectors of shared/models/README.md, BOS
/// handling, byte fallback, offsets, decoding, and loader errors.
/// </summary>
[TestClass]
public sealed class SentencePieceTokenizerTests
{
    private static readonly int[] OnceUponATime = [403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315, 421, 395, 317, 426];
    private static readonly int[] HelloWorld = [346, 306, 414, 263, 304, 341, 443];

    private static readonly Lazy<Tokenizer> s_model = new(() => SentencePieceBpeTokenizer.Create(Path.Combine(TestPaths.Stories260K, "tokenizer.model")));
    private static readonly Lazy<Tokenizer> s_json = new(() => TokenizerLoader.FromTokenizerJson(Path.Combine(TestPaths.Stories260K, "tokenizer.json")));
    private static readonly Lazy<Tokenizer> s_folder = new(() => TokenizerLoader.FromFolder(TestPaths.Stories260K));

    private static IEnumerable<object[]> Loaders => [["model"], ["json"], ["folder"]];

    private static Tokenizer Get(string loader) => loader switch { "model" => s_model.Value, "json" => s_json.Value, _ => s_folder.Value };

    [TestMethod]
    [DynamicData(nameof(Loaders))]
    public void PublishedTestVectors(string loader)
    {
        var tokenizer = Get(loader);
        CollectionAssert.AreEqual(OnceUponATime, tokenizer.EncodeToIds("Once upon a time, there was a little girl named Lily.").ToArray());
        CollectionAssert.AreEqual(HelloWorld, tokenizer.EncodeToIds("Hello world!").ToArray());
        Assert.AreEqual(7, tokenizer.CountTokens("Hello world!"));
    }

    [TestMethod]
    [DynamicData(nameof(Loaders))]
    public void EncodePrependsBosAndRolesAreLlamas(string loader)
    {
        var tokenizer = Get(loader);
        CollectionAssert.AreEqual((int[])[1, .. HelloWorld], tokenizer.Encode("Hello world!").InputIds);
        Assert.AreEqual(0, tokenizer.UnknownTokenId);
        Assert.AreEqual(1, tokenizer.BeginningOfSentenceTokenId);
        Assert.AreEqual(2, tokenizer.EndOfSentenceTokenId);
        Assert.IsNull(tokenizer.PaddingTokenId);
        Assert.AreEqual(512, tokenizer.VocabularySize);
    }

    [TestMethod]
    [DynamicData(nameof(Loaders))]
    public void DecodeDropsControlTokensAndTheDummyPrefixSpace(string loader)
    {
        var tokenizer = Get(loader);
        Assert.AreEqual("Once upon a time, there was a little girl named Lily.", tokenizer.Decode([1, .. OnceUponATime, 2], skipSpecialTokens: true));
    }

    [TestMethod]
    [DynamicData(nameof(Loaders))]
    public void UnknownCharactersFallBackToUtf8Bytes(string loader)
    {
        // "日" is not a piece: "▁" (410), then its UTF-8 bytes E6 97 A5 as <0xE6> (233) <0x97> (154) <0xA5> (168).
        var tokenizer = Get(loader);
        var tokens = tokenizer.EncodeToTokens("日", out _);
        CollectionAssert.AreEqual(new[] { 410, 233, 154, 168 }, tokens.Select(t => t.Id).ToArray());
        CollectionAssert.AreEqual(new[] { "▁", "<0xE6>", "<0x97>", "<0xA5>" }, tokens.Select(t => t.Value).ToArray());
        Assert.AreEqual("日", tokenizer.Decode(tokens.Select(t => t.Id)));
    }

    [TestMethod]
    public void OffsetsPointIntoTheOriginalText()
    {
        // Pieces ▁He ll o ▁w or ld !: the dummy-prefix "▁" has no original character, the second "▁" is the space.
        const string text = "Hello world!";
        var tokens = s_model.Value.EncodeToTokens(text, out string? normalized);
        Assert.AreEqual("▁Hello▁world!", normalized);
        CollectionAssert.AreEqual(new[] { "He", "ll", "o", " w", "or", "ld", "!" }, tokens.Select(t => text[t.Offset]).ToArray());
    }

    [TestMethod]
    public void ModelFileCollapsesWhitespaceButTokenizerJsonDoesNot()
    {
        // sentencepiece's remove_extra_whitespaces: "  a  b  " encodes like "a b" (261 268); the tokenizer.json keeps spaces.
        CollectionAssert.AreEqual(new[] { 261, 268 }, s_model.Value.EncodeToIds("  a  b  ").ToArray());
        CollectionAssert.AreNotEqual(new[] { 261, 268 }, s_json.Value.EncodeToIds("  a  b  ").ToArray());
        Assert.IsTrue(((SentencePieceBpeTokenizer)s_model.Value).RemoveExtraWhitespaces);
        Assert.IsFalse(((SentencePieceBpeTokenizer)s_json.Value).RemoveExtraWhitespaces);
    }

    [TestMethod]
    public void EncodeToIdsWithMaxTokenCountStopsOnACharacterBoundary()
    {
        // "▁日" is 4 tokens; keeping 2 would cut the 3-byte character, so only the "▁" survives.
        var ids = s_model.Value.EncodeToIds("日", 2, out _, out int consumed);
        CollectionAssert.AreEqual(new[] { 410 }, ids.ToArray());
        Assert.AreEqual(0, consumed);
        ids = s_model.Value.EncodeToIds("Hello world!", 3, out _, out consumed);
        CollectionAssert.AreEqual(HelloWorld[..3], ids.ToArray());
        Assert.AreEqual(5, consumed);
    }

    [TestMethod]
    public void UnigramModelIsRejectedNamingTheField()
    {
        // Append trainer_spec { model_type: UNIGRAM } (field 2, LEN 2: field 3 varint 1); protobuf merges it in.
        byte[] bytes = [.. File.ReadAllBytes(Path.Combine(TestPaths.Stories260K, "tokenizer.model")), 0x12, 0x02, 0x18, 0x01];
        using var stream = new MemoryStream(bytes);
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() => SentencePieceBpeTokenizer.Create(stream));
        StringAssert.Contains(e.Message, "model_type");
        StringAssert.Contains(e.Message, "UNIGRAM");
    }

    [TestMethod]
    public void TruncatedModelIsAFormatError()
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(TestPaths.Stories260K, "tokenizer.model"));
        using var stream = new MemoryStream(bytes[..1000]);
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() => SentencePieceBpeTokenizer.Create(stream));
        StringAssert.Contains(e.Message, "tokenizer.model");
    }
}
