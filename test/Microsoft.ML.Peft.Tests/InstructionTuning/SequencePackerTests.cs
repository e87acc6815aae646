using Microsoft.ML.Peft.InstructionTuning;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

[TestClass]
public sealed class SequencePackerTests
{
    private const int X = InstructionEncoder.IgnoreIndex;

    /// <summary>A sequence of <paramref name="prompt"/> prompt tokens then <paramref name="response"/> response tokens (ids from <paramref name="first"/>).</summary>
    private static CausalLmSequence Seq(int first, int prompt, int response)
    {
        var ids = Enumerable.Range(first, prompt + response).ToArray();
        var labels = ids.Select((id, i) => i < prompt ? X : id).ToArray();
        return new CausalLmSequence(ids, labels);
    }

    [TestMethod]
    public void Pack_KeepsSequencesWholeAndInOrder_StartsANewRowWhenTheNextDoesNotFit()
    {
        // Lengths 4, 3, 5, 2, 6 into rows of 8: [4+3], [5+2], [6].
        CausalLmSequence[] sequences = [Seq(100, 2, 2), Seq(200, 1, 2), Seq(300, 3, 2), Seq(400, 1, 1), Seq(500, 4, 2)];
        var rows = SequencePacker.Pack(sequences, 8, out var starts);
        Assert.HasCount(3, rows);
        CollectionAssert.AreEqual(new[] { 0, 4 }, starts[0].ToArray());
        CollectionAssert.AreEqual(new[] { 0, 5 }, starts[1].ToArray());
        CollectionAssert.AreEqual(new[] { 0 }, starts[2].ToArray());
        CollectionAssert.AreEqual(new[] { 100, 101, 102, 103, 200, 201, 202 }, rows[0].InputIds);
        CollectionAssert.AreEqual(new[] { X, X, 102, 103, X, 201, 202 }, rows[0].Labels);
        CollectionAssert.AreEqual(new[] { 300, 301, 302, 303, 304, 400, 401 }, rows[1].InputIds);
        CollectionAssert.AreEqual(new[] { X, X, X, 303, 304, X, 401 }, rows[1].Labels);
        CollectionAssert.AreEqual(new[] { X, X, X, X, 504, 505 }, rows[2].Labels);
        // Nothing lost, nothing duplicated; no row longer than 8.
        CollectionAssert.AreEqual(sequences.SelectMany(s => s.InputIds).ToArray(), rows.SelectMany(r => r.InputIds).ToArray());
        Assert.IsTrue(rows.All(r => r.Length <= 8));
    }

    [TestMethod]
    public void Pack_BoundaryLabels_NoLossCrossesASequenceBoundary()
    {
        CausalLmSequence[] sequences = [Seq(10, 3, 2), Seq(20, 2, 3), Seq(30, 1, 1)];
        var rows = SequencePacker.Pack(sequences, 64, out var starts);
        Assert.HasCount(1, rows);
        var row = rows[0];
        foreach (int start in starts[0].Skip(1))
        {
            // The first token of a sequence is a prompt token: predicting it from the previous sequence's last token costs nothing.
            Assert.AreEqual(X, row.Labels[start], $"label at the start of the sequence at {start}");
            // The previous sequence's last token (its EOS in real data) is still supervised.
            Assert.AreNotEqual(X, row.Labels[start - 1], $"label of the last token before {start}");
        }
        Assert.AreEqual(sequences.Sum(s => s.SupervisedTokens), row.SupervisedTokens);
    }

    [TestMethod]
    public void Pack_ExactFit_AndTooLong()
    {
        var rows = SequencePacker.Pack([Seq(1, 2, 2), Seq(9, 2, 2)], 8);
        Assert.HasCount(1, rows);
        Assert.AreEqual(8, rows[0].Length);
        var e = Assert.ThrowsExactly<ArgumentException>(() => SequencePacker.Pack([Seq(1, 2, 2), Seq(9, 5, 5)], 8));
        StringAssert.Contains(e.Message, "sequence 1 has 10 tokens");
        Assert.HasCount(0, SequencePacker.Pack([], 8));
    }
}
