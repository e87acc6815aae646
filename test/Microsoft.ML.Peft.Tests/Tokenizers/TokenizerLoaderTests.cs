using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>Which tokenizer <see cref="TokenizerLoader.FromFolder"/> picks, and what it reads from the config files.</summary>
[TestClass]
public sealed class TokenizerLoaderTests
{
    [TestMethod]
    public void BertFolder_UsesTokenizerJsonAndConfigRoles()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.BertTokenizer);
        var wordPiece = Assert.IsInstanceOfType<WordPieceTokenizer>(tokenizer);
        Assert.IsTrue(wordPiece.LowerCase);
        Assert.AreEqual(101, tokenizer.ClassificationTokenId);
        Assert.AreEqual(0, tokenizer.PaddingTokenId);
        Assert.IsNull(tokenizer.ModelMaxLength, "model_max_length is transformers' 1e30 'unset' sentinel");
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102 }, tokenizer.Encode("Hello World").InputIds);
    }

    [TestMethod]
    public void StoriesFolder_UsesTokenizerJsonWithLlamaConfig()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        Assert.IsInstanceOfType<SentencePieceBpeTokenizer>(tokenizer);
        Assert.AreEqual(512, tokenizer.ModelMaxLength);
        Assert.AreEqual(1, tokenizer.BeginningOfSentenceTokenId);
    }

    [TestMethod]
    public void FolderWithOnlyTokenizerModel_UsesSentencePiece()
    {
        using var folder = new TempFolder();
        File.Copy(Path.Combine(TestPaths.Stories260K, "tokenizer.model"), Path.Combine(folder.Path, "tokenizer.model"));
        var tokenizer = (SentencePieceBpeTokenizer)TokenizerLoader.FromFolder(folder.Path);
        Assert.IsTrue(tokenizer.RemoveExtraWhitespaces);
        CollectionAssert.AreEqual(new[] { 1, 346, 306, 414 }, tokenizer.Encode("Hello").InputIds);
    }

    [TestMethod]
    public void FolderWithVocabTxt_HonoursDoLowerCase()
    {
        using var folder = new TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, "vocab.txt"), "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nHello\nhello\n");
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer_config.json"), """{"do_lower_case": false, "model_max_length": 128}""");
        var tokenizer = TokenizerLoader.FromFolder(folder.Path);
        CollectionAssert.AreEqual(new[] { 2, 5, 6, 3 }, tokenizer.Encode("Hello hello").InputIds);
        Assert.AreEqual(128, tokenizer.ModelMaxLength);
    }

    [TestMethod]
    public void SpecialTokenMissingFromTheVocabulary_NamesFileAndKey()
    {
        using var folder = new TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, "vocab.txt"), "[PAD]\n[UNK]\nhello\n");
        File.WriteAllText(Path.Combine(folder.Path, "special_tokens_map.json"), """{"mask_token": {"content": "<mask>", "lstrip": true}}""");
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() => TokenizerLoader.FromFolder(folder.Path));
        StringAssert.Contains(e.Message, "special_tokens_map.json");
        StringAssert.Contains(e.Message, "mask_token");
        StringAssert.Contains(e.Message, "<mask>");
    }

    [TestMethod]
    public void MalformedConfig_IsAFormatErrorNamingTheFile()
    {
        using var folder = new TempFolder();
        File.WriteAllText(Path.Combine(folder.Path, "vocab.txt"), "[UNK]\n");
        File.WriteAllText(Path.Combine(folder.Path, "tokenizer_config.json"), """{"add_bos_token": "yes"}""");
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() => TokenizerLoader.FromFolder(folder.Path));
        StringAssert.Contains(e.Message, "tokenizer_config.json");
        StringAssert.Contains(e.Message, "add_bos_token");
    }

    [TestMethod]
    public void EmptyOrMissingFolder_Throws()
    {
        using var folder = new TempFolder();
        Assert.ThrowsExactly<FileNotFoundException>(() => TokenizerLoader.FromFolder(folder.Path));
        Assert.ThrowsExactly<DirectoryNotFoundException>(() => TokenizerLoader.FromFolder(Path.Combine(folder.Path, "nope")));
    }

    [TestMethod]
    public void UnsupportedModelType_NamesTheField()
    {
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() => TokenizerLoader.FromTokenizerJson(
            new MemoryStream("""{"model": {"type": "Unigram", "vocab": [["a", 0.0]]}}"""u8.ToArray()), "t5.json"));
        StringAssert.Contains(e.Message, "t5.json");
        StringAssert.Contains(e.Message, "model.type");
        StringAssert.Contains(e.Message, "Unigram");
    }

    private sealed class TempFolder : IDisposable
    {
        public TempFolder() => Directory.CreateDirectory(Path);

        public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "peft-tok-" + Guid.NewGuid().ToString("N"));

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
