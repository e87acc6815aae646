using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// WordPiece ids for 2,800 real and edge-case sentences against the independent pure-Python BERT tokenizer in
/// build/reference/tokenizer_reference.py (fixture wordpiece_bert.jsonl.gz), for both the vocab.txt and the
/// tokenizer.json loaders of bert-base-uncased.
/// </summary>
[TestClass]
public sealed class WordPieceParityTests
{
    [TestMethod]
    public void VocabTxt_MatchesPythonReferenceOnCorpus()
    {
        var tokenizer = WordPieceTokenizer.Create(Path.Combine(TestPaths.BertTokenizer, "vocab.txt"));
        AssertMatchesReference(tokenizer);
    }

    [TestMethod]
    public void TokenizerJson_MatchesPythonReferenceOnCorpus()
    {
        var tokenizer = TokenizerLoader.FromTokenizerJson(Path.Combine(TestPaths.BertTokenizer, "tokenizer.json"));
        Assert.IsInstanceOfType<WordPieceTokenizer>(tokenizer);
        AssertMatchesReference(tokenizer);
    }

    private static void AssertMatchesReference(Tokenizer tokenizer)
    {
        var expected = TokenizerFixtures.ReadRecords("wordpiece_bert.jsonl.gz");
        var corpus = TokenizerFixtures.Corpus;
        Assert.HasCount(corpus.Count, expected);
        Assert.IsGreaterThanOrEqualTo(2000, corpus.Count);
        TokenizerFixtures.AssertAllEqual(corpus.Count,
            i => (TokenizerFixtures.Join(expected[i].Ints("ids")), TokenizerFixtures.Join(tokenizer.EncodeToIds(corpus[i]))),
            "WordPiece ids");
    }
}
