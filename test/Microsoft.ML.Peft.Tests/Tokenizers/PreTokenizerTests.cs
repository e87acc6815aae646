using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.Tokenizers;

/// <summary>
/// The hand-written GPT-2 and Llama-3 scanners against .NET's backtracking Regex running the exact patterns, on random
/// strings over an alphabet chosen to stress the alternatives (contractions, runs of spaces before words, line breaks,
/// digits, punctuation, NBSP, tabs). The alphabet stays in the BMP because .NET Regex classifies UTF-16 units, so an
/// astral letter is not \p{L} there (the scanners follow Python/Rust, which classify code points; the Python fixture
/// covers that case).
/// </summary>
[TestClass]
public sealed class PreTokenizerTests
{
    private const string Alphabet = "aZsStTrReEvVmMlLdDxé日 '  \t\n\r\u00a0\u3000.,!?()-_\"01239٣";

    [TestMethod]
    public void Gpt2Scanner_AgreesWithRegexOnRandomStrings() =>
        AssertAgrees(new Gpt2PreTokenizer(), PreTokenizer.Gpt2Pattern, seed: 1);

    [TestMethod]
    public void Llama3Scanner_AgreesWithRegexOnRandomStrings() =>
        AssertAgrees(new Llama3PreTokenizer(), PreTokenizer.Llama3Pattern, seed: 2);

    [TestMethod]
    public void Gpt2Scanner_HandCheckedSplit()
    {
        // Contractions split off, a single space sticks to the next word, the last of several spaces too.
        Assert.AreEqual("Hello|'s| world|  | there|!|\n", Split(new Gpt2PreTokenizer(), "Hello's world   there!\n"));
    }

    [TestMethod]
    public void Llama3Scanner_HandCheckedSplit()
    {
        // Case-insensitive contraction; a space before digits stands alone; digits in threes; punctuation glued to the
        // next word; line breaks kept apart.
        Assert.AreEqual("I|'M| |123|4|(word|\n\n|x", Split(new Llama3PreTokenizer(), "I'M 1234(word\n\nx"));
    }

    private static string Split(PreTokenizer scanner, string text)
    {
        var pieces = new List<(int Start, int Length)>();
        scanner.Split(text, pieces);
        return string.Join("|", pieces.Select(p => text.Substring(p.Start, p.Length)));
    }

    private static void AssertAgrees(PreTokenizer scanner, string pattern, int seed)
    {
        var regex = new Regex(pattern, RegexOptions.CultureInvariant);
        var random = new Random(seed);
        var pieces = new List<(int Start, int Length)>();
        for (int n = 0; n < 5000; n++)
        {
            var sb = new StringBuilder();
            int length = random.Next(0, 24);
            for (int i = 0; i < length; i++) sb.Append(Alphabet[random.Next(Alphabet.Length)]);
            string text = sb.ToString();
            string expected = string.Join("|", regex.Matches(text).Select(m => m.Value));
            pieces.Clear();
            scanner.Split(text, pieces);
            string actual = string.Join("|", pieces.Select(p => text.Substring(p.Start, p.Length)));
            Assert.AreEqual(expected, actual, $"text {System.Text.Json.JsonSerializer.Serialize(text)}");
        }
    }
}
