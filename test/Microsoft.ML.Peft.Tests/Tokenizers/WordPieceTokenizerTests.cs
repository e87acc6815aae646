using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// Hand-checked WordPiece cases against bert-base-uncased's vocab.txt (ids are line numbers, looked up by hand with
/// grep -n; the greedy splits were checked by listing which prefixes are in the vocabulary).
/// </summary>
[TestClass]
public sealed class WordPieceTokenizerTests
{
    private static readonly Lazy<WordPieceTokenizer> s_bert = new(() =>
        WordPieceTokenizer.Create(Path.Combine(TestPaths.BertTokenizer, "vocab.txt")));

    private static WordPieceTokenizer Bert => s_bert.Value;

    [TestMethod]
    public void HelloWorld_WithSpecialTokens_Is101_7592_2088_102()
    {
        CollectionAssert.AreEqual(new[] { 101, 7592, 2088, 102 }, Bert.Encode("hello world").InputIds);
        CollectionAssert.AreEqual(new[] { 7592, 2088 }, Bert.EncodeToIds("hello world").ToArray());
    }

    [TestMethod]
    public void GreedyLongestMatch_SplitsUnaffable()
    {
        // "unaffable": the longest vocabulary prefix is "una", then "##ffa", then "##ble".
        CollectionAssert.AreEqual(new[] { 14477, 20961, 3468 }, Bert.EncodeToIds("unaffable").ToArray());
    }

    [TestMethod]
    public void LowerCasesStripsAccentsAndSplitsPunctuation()
    {
        // "Héllo, WORLD!" → "hello , world !"
        CollectionAssert.AreEqual(new[] { 7592, 1010, 2088, 999 }, Bert.EncodeToIds("Héllo, WORLD!").ToArray());
        // "$" (ASCII 36) is punctuation for BERT although Unicode calls it a currency symbol.
        CollectionAssert.AreEqual(new[] { 1002, 1002 }, Bert.EncodeToIds("$$").ToArray());
    }

    [TestMethod]
    public void ChineseCharactersBecomeSeparateWords()
    {
        CollectionAssert.AreEqual(new[] { 1864, 1876 }, Bert.EncodeToIds("日本").ToArray());
    }

    [TestMethod]
    public void ControlCharactersAreRemovedAndWhitespaceSeparates()
    {
        // NUL and U+200B (format) vanish, so "hel\0lo" is one word; tab and NBSP separate words.
        CollectionAssert.AreEqual(new[] { 7592, 2088 }, Bert.EncodeToIds("hel\0lo\u200B\tworld").ToArray());
        CollectionAssert.AreEqual(new[] { 7592, 2088 }, Bert.EncodeToIds("hello\u00A0world").ToArray());
    }

    [TestMethod]
    public void WordsLongerThan100CharactersAreUnknown()
    {
        string word100 = new('a', 100), word101 = new('a', 101);
        Assert.AreNotEqual(100, Bert.EncodeToIds(word100)[0]);
        CollectionAssert.AreEqual(new[] { 100 }, Bert.EncodeToIds(word101).ToArray());
    }

    [TestMethod]
    public void WordLengthLimitCountsCodePointsNotUtf16Units()
    {
        // "a𝐀𝐀" is 3 code points but 5 UTF-16 units; with a limit of 3 it must still be split, not become [UNK].
        using var stream = new MemoryStream("[UNK]\na\n##\U0001D400\n"u8.ToArray());
        var tokenizer = WordPieceTokenizer.Create(stream, new WordPieceOptions { MaxInputCharsPerWord = 3 });
        CollectionAssert.AreEqual(new[] { 1, 2, 2 }, tokenizer.EncodeToIds("a\U0001D400\U0001D400").ToArray());
        CollectionAssert.AreEqual(new[] { 0 }, tokenizer.EncodeToIds("a\U0001D400\U0001D400\U0001D400").ToArray());
    }

    [TestMethod]
    public void SpecialTokensInTextAreMatchedVerbatim()
    {
        CollectionAssert.AreEqual(new[] { 101, 7592, 102, 103 }, Bert.EncodeToIds("[CLS] hello [SEP][MASK]").ToArray());
    }

    [TestMethod]
    public void OffsetsPointIntoTheOriginalText()
    {
        const string text = "Héllo, unaffable!";
        var tokens = Bert.EncodeToTokens(text, out string? normalized);
        Assert.AreEqual("hello, unaffable!", normalized);
        var expected = new (int Id, string Value, string Surface)[]
        {
            (7592, "hello", "Héllo"), (1010, ",", ","), (14477, "una", "una"), (20961, "##ffa", "ffa"), (3468, "##ble", "ble"), (999, "!", "!"),
        };
        Assert.HasCount(expected.Length, tokens);
        for (int i = 0; i < expected.Length; i++)
        {
            Assert.AreEqual(expected[i].Id, tokens[i].Id);
            Assert.AreEqual(expected[i].Value, tokens[i].Value);
            Assert.AreEqual(expected[i].Surface, text[tokens[i].Offset]);
        }
    }

    [TestMethod]
    public void DecodeJoinsContinuationPiecesAndCleansUpSpaces()
    {
        var ids = Bert.Encode("Unaffable, isn't it?").InputIds;
        Assert.AreEqual("[CLS] unaffable, isn't it? [SEP]", Bert.Decode(ids));
        Assert.AreEqual("unaffable, isn't it?", Bert.Decode(ids, skipSpecialTokens: true));
    }

    [TestMethod]
    public void DecodingAnIdOutsideTheVocabularyNamesIt()
    {
        var e = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => Bert.Decode([7592, 30522]));
        StringAssert.Contains(e.Message, "ids[1] = 30522");
    }

    [TestMethod]
    public void CountTokensMatchesEncode()
    {
        Assert.AreEqual(3, Bert.CountTokens("unaffable"));
        Assert.AreEqual(0, Bert.CountTokens("   "));
    }

    [TestMethod]
    public void SpecialTokenRolesComeFromTheBertDefaults()
    {
        Assert.AreEqual(0, Bert.PaddingTokenId);
        Assert.AreEqual(100, Bert.UnknownTokenId);
        Assert.AreEqual(101, Bert.ClassificationTokenId);
        Assert.AreEqual(102, Bert.SeparatorTokenId);
        Assert.AreEqual(103, Bert.MaskingTokenId);
        Assert.AreEqual(30522, Bert.VocabularySize);
        Assert.AreEqual("hello", Bert.IdToToken(7592));
        Assert.AreEqual(7592, Bert.TokenToId("hello"));
    }

    [TestMethod]
    public void MissingUnknownTokenIsAFormatErrorNamingTheSource()
    {
        using var stream = new MemoryStream("a\nb\n"u8.ToArray());
        var e = Assert.ThrowsExactly<TokenizerFormatException>(() => WordPieceTokenizer.Create(stream, sourceName: "tiny-vocab.txt"));
        StringAssert.Contains(e.Message, "tiny-vocab.txt");
        StringAssert.Contains(e.Message, "[UNK]");
    }
}
