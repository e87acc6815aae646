using Microsoft.ML.Peft.InstructionTuning;
using Microsoft.ML.Peft.Tokenizers;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

/// <summary>
/// Token ids and label masks of <see cref="InstructionEncoder"/> on the stories260K tokenizer. The expected ids come from
/// Python's sentencepiece on ../shared/models/stories260K/tok512.model (<c>sp.encode("Q: Add. 2 + 3\nA:")</c> and
/// <c>sp.encode("5")</c>), BOS = 1 and EOS = 2 from the same model, not from this library.
/// </summary>
[TestClass]
public sealed class InstructionEncoderTests
{
    private const int X = InstructionEncoder.IgnoreIndex;
    private static readonly Lazy<Tokenizer> Stories = new(() => TokenizerLoader.FromFolder(TestPaths.Stories260K));
    private static readonly PromptTemplate Template = new("Q: {instruction} {input}\nA:");
    private static readonly int[] PromptIds = [1, 410, 473, 467, 410, 447, 418, 418, 426, 410, 479, 410, 496, 410, 472, 13, 447, 467];
    private static readonly int[] ResponseIds = [410, 480];

    [TestMethod]
    public void Encode_PromptMaskedWithMinus100_ResponseAndEosSupervised()
    {
        var encoder = new InstructionEncoder(Stories.Value, Template, 64, endOfSequenceId: 2);
        CollectionAssert.AreEqual(PromptIds, encoder.EncodePrompt("Add.", "2 + 3"));
        var s = encoder.Encode(new InstructionExample("Add.", "2 + 3", "5"), out bool truncated)!;
        Assert.IsFalse(truncated);
        CollectionAssert.AreEqual(PromptIds.Concat(ResponseIds).Append(2).ToArray(), s.InputIds);
        // 18 prompt positions ignored, then "▁", "5", EOS.
        CollectionAssert.AreEqual(Enumerable.Repeat(X, 18).Concat([410, 480, 2]).ToArray(), s.Labels);
        Assert.AreEqual(3, s.SupervisedTokens);
    }

    [TestMethod]
    public void Encode_TruncatesAtTheEnd_DropsRowsWithoutResponse()
    {
        var cut = new InstructionEncoder(Stories.Value, Template, 19, 2).Encode(new InstructionExample("Add.", "2 + 3", "5"), out bool truncated)!;
        Assert.IsTrue(truncated);
        CollectionAssert.AreEqual(PromptIds.Append(410).ToArray(), cut.InputIds);
        CollectionAssert.AreEqual(Enumerable.Repeat(X, 18).Append(410).ToArray(), cut.Labels);

        Assert.IsNull(new InstructionEncoder(Stories.Value, Template, 18, 2).Encode(new InstructionExample("Add.", "2 + 3", "5"), out truncated));
        Assert.IsTrue(truncated);
    }

    [TestMethod]
    public void Encode_EmptyResponse_StillLearnsTheEos()
    {
        var s = new InstructionEncoder(Stories.Value, Template, 64, 2).Encode(new InstructionExample("Add.", "2 + 3", ""), out _)!;
        CollectionAssert.AreEqual(PromptIds.Append(2).ToArray(), s.InputIds);
        Assert.AreEqual(1, s.SupervisedTokens);
        Assert.AreEqual(2, s.Labels[^1]);
    }
}
