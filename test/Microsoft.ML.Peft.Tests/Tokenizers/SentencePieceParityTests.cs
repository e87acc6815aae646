using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// SentencePiece parity on 2,800 real and edge-case sentences: ids and decoded text must equal what the sentencepiece
/// library (python3-sentencepiece 0.1.97) produced in build/reference/tokenizer_reference.py.
/// </summary>
[TestClass]
public sealed class SentencePieceParityTests
{
    private static readonly string StoriesModel = Path.Combine(TestPaths.Stories260K, "tokenizer.model");

    [TestMethod]
    public void StoriesModel_MatchesSentencePiece()
    {
        AssertMatches(SentencePieceBpeTokenizer.Create(StoriesModel), "spm_stories.jsonl.gz", "decoded");
    }

    [TestMethod]
    public void StoriesModelWithoutWhitespaceRemoval_MatchesSentencePiece()
    {
        // The same model with normalizer_spec.remove_extra_whitespaces = false appended, exactly as the script did.
        byte[] bytes = [.. File.ReadAllBytes(StoriesModel), 0x1A, 0x02, 0x20, 0x00];
        using var stream = new MemoryStream(bytes);
        var tokenizer = SentencePieceBpeTokenizer.Create(stream);
        Assert.IsFalse(tokenizer.RemoveExtraWhitespaces);
        AssertMatches(tokenizer, "spm_stories_keepws.jsonl.gz", "decoded");
    }

    [TestMethod]
    public void StoriesTokenizerJson_MatchesSentencePieceWithoutWhitespaceRemoval()
    {
        // stories260K's tokenizer.json (Prepend "▁" + Replace " " → "▁", rank-ordered merges, byte fallback) keeps
        // every space, so its ids equal sentencepiece's with remove_extra_whitespaces off; its decoder (Replace,
        // ByteFallback, Fuse, Strip one leading space) is checked against the script's rendering of that chain.
        var tokenizer = TokenizerLoader.FromTokenizerJson(Path.Combine(TestPaths.Stories260K, "tokenizer.json"));
        Assert.IsInstanceOfType<SentencePieceBpeTokenizer>(tokenizer);
        AssertMatches(tokenizer, "spm_stories_keepws.jsonl.gz", "hf_decoded");
    }

    [TestMethod]
    public void TrainedNfkcModel_MatchesSentencePiece()
    {
        // nmt_nfkc precompiled charsmap, no byte fallback (unknowns fuse into one <unk>), user-defined symbols.
        var tokenizer = SentencePieceBpeTokenizer.Create(TokenizerFixtures.Path("spm_trained_nfkc.model"));
        Assert.IsFalse(tokenizer.ByteFallback);
        AssertMatches(tokenizer, "spm_trained_nfkc.jsonl.gz", "decoded");
    }

    [TestMethod]
    public void TrainedOptionsModel_MatchesSentencePiece()
    {
        // identity normaliser, no dummy prefix, whitespace kept, byte fallback, split digits.
        var tokenizer = SentencePieceBpeTokenizer.Create(TokenizerFixtures.Path("spm_trained_options.model"));
        Assert.IsFalse(tokenizer.AddDummyPrefix);
        AssertMatches(tokenizer, "spm_trained_options.jsonl.gz", "decoded");
    }

    internal static void AssertMatches(Tokenizer tokenizer, string fixture, string decodedField)
    {
        var expected = TokenizerFixtures.ReadRecords(fixture);
        var corpus = TokenizerFixtures.Corpus;
        Assert.HasCount(corpus.Count, expected);
        var actualIds = corpus.Select(t => tokenizer.EncodeToIds(t).ToArray()).ToArray();
        TokenizerFixtures.AssertAllEqual(corpus.Count,
            i => (TokenizerFixtures.Join(expected[i].Ints("ids")), TokenizerFixtures.Join(actualIds[i])), $"{fixture} ids");
        TokenizerFixtures.AssertAllEqual(corpus.Count,
            i => (expected[i].Str(decodedField), tokenizer.Decode(expected[i].Ints("ids"))), $"{fixture} decoded text");
    }
}
