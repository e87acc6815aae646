using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// Byte-level BPE against the pure-Python GPT-2-style encoder of build/reference/tokenizer_reference.py, which learned
/// a 500-merge vocabulary from SST-2/CoLA training sentences (and a second one over AG News with the Llama-3 regex)
/// and encoded the 2,800-sentence corpus with OpenAI's merge loop and Python-re versions of both regexes.
/// </summary>
[TestClass]
public sealed class ByteLevelBpeParityTests
{
    private static readonly Lazy<List<System.Text.Json.JsonElement>> s_expected = new(() => TokenizerFixtures.ReadRecords("bytelevel.jsonl.gz"));

    private static string Folder(string name) => TokenizerFixtures.Path("bytelevel", name);

    [TestMethod]
    public void Gpt2_VocabAndMerges_MatchesReferenceAndRoundTrips()
    {
        var tokenizer = TokenizerLoader.FromFolder(Folder("gpt2"));
        Assert.IsInstanceOfType<ByteLevelBpeTokenizer>(tokenizer);
        AssertIds(tokenizer, "gpt2");
        var corpus = TokenizerFixtures.Corpus;
        TokenizerFixtures.AssertAllEqual(corpus.Count, i => (corpus[i], tokenizer.Decode(tokenizer.EncodeToIds(corpus[i]))), "byte-level round trip");
    }

    [TestMethod]
    public void Gpt2_TokenizerJson_MatchesReference()
    {
        var tokenizer = TokenizerLoader.FromTokenizerJson(Path.Combine(Folder("json"), "tokenizer.json"));
        Assert.IsInstanceOfType<ByteLevelBpeTokenizer>(tokenizer);
        AssertIds(tokenizer, "gpt2");
        var expected = s_expected.Value;
        TokenizerFixtures.AssertAllEqual(expected.Count, i => (expected[i].Str("gpt2_decoded"), tokenizer.Decode(expected[i].Ints("gpt2"))), "decoded");
    }

    [TestMethod]
    public void Roberta_AddPrefixSpace_MatchesReference()
    {
        var tokenizer = (ByteLevelBpeTokenizer)TokenizerLoader.FromFolder(Folder("roberta"));
        Assert.IsTrue(tokenizer.AddPrefixSpace);
        AssertIds(tokenizer, "roberta");
    }

    [TestMethod]
    public void Llama3_SplitRegexWithIgnoreMerges_MatchesReference()
    {
        var tokenizer = TokenizerLoader.FromTokenizerJson(Path.Combine(Folder("llama3"), "tokenizer.json"));
        AssertIds(tokenizer, "llama3");
    }

    [TestMethod]
    public void PreTokenizerScanners_MatchPythonRegexPieces()
    {
        var corpus = TokenizerFixtures.Corpus;
        var expected = s_expected.Value;
        foreach (var (scanner, field) in new (PreTokenizer, string)[] { (new Gpt2PreTokenizer(), "gpt2_pieces"), (new Llama3PreTokenizer(), "llama3_pieces") })
        {
            TokenizerFixtures.AssertAllEqual(corpus.Count, i =>
            {
                var pieces = new List<(int Start, int Length)>();
                scanner.Split(corpus[i], pieces);
                var actual = pieces.Select(p => corpus[i].Substring(p.Start, p.Length));
                var wanted = expected[i].GetProperty(field).EnumerateArray().Select(e => e.GetString()!);
                return (string.Join("|", wanted), string.Join("|", actual));
            }, field);
        }
    }

    private static void AssertIds(Tokenizer tokenizer, string field)
    {
        var corpus = TokenizerFixtures.Corpus;
        var expected = s_expected.Value;
        TokenizerFixtures.AssertAllEqual(corpus.Count,
            i => (TokenizerFixtures.Join(expected[i].Ints(field)), TokenizerFixtures.Join(tokenizer.EncodeToIds(corpus[i]))), field);
    }
}
