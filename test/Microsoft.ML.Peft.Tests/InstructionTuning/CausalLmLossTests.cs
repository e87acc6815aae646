using Microsoft.ML.Peft.InstructionTuning;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.InstructionTuning;

/// <summary>
/// The batched, padded, prompt-masked loss of <see cref="CausalLmLoss"/> against an independent computation: each
/// sequence runs alone (no padding, no mask), and −log softmax(logits[t − 1])[label t] is summed in double over the
/// hand-masked positions.
/// </summary>
[TestClass]
public sealed class CausalLmLossTests
{
    private const int X = InstructionEncoder.IgnoreIndex;

    [TestMethod]
    public void Evaluate_EqualsPerSequenceDoubleLogSoftmaxOverSupervisedPositions()
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        CausalLmSequence[] sequences =
        [
            new([1, 403, 261, 290, 319, 13, 282, 2], [X, X, X, X, X, 13, 282, 2]),
            new([1, 66, 77, 88], [X, X, 77, 88]),
            new([1, 300, 301, 302, 303, 304, 305, 306, 307, 308, 2], [X, X, X, X, X, X, X, X, 307, 308, 2]),
        ];
        double expectedSum = 0;
        int expectedTokens = 0;
        using (TensorScope.Begin())
        using (Autograd.NoGrad())
        {
            foreach (var s in sequences)
            {
                var logits = model.Forward(Tensor.FromInt32(s.InputIds, 1, s.Length)).ToArray();
                int v = model.VocabSize;
                for (int t = 1; t < s.Length; t++)
                {
                    if (s.Labels[t] == X) continue;
                    double max = double.NegativeInfinity;
                    for (int c = 0; c < v; c++) max = Math.Max(max, logits[(t - 1) * v + c]);
                    double z = 0;
                    for (int c = 0; c < v; c++) z += Math.Exp(logits[(t - 1) * v + c] - max);
                    expectedSum += -(logits[(t - 1) * v + s.Labels[t]] - max - Math.Log(z));
                    expectedTokens++;
                }
            }
        }
        Assert.AreEqual(8, expectedTokens);
        // Batches of 2: the second batch holds one sequence, the first pads the 4-token one to 8.
        var (mean, tokens) = CausalLmLoss.Evaluate(model, sequences, batchSize: 2, paddingId: 0);
        Assert.AreEqual(8L, tokens);
        Assert.AreEqual(expectedSum / expectedTokens, mean, 1e-5 * Math.Abs(mean));
        var (oneBatch, _) = CausalLmLoss.Evaluate(model, sequences, batchSize: 3, paddingId: 5);
        Assert.AreEqual(mean, oneBatch, 1e-5 * Math.Abs(mean));
    }

    [TestMethod]
    public void Evaluate_NothingSupervised_IsAnError()
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        var e = Assert.ThrowsExactly<ArgumentException>(() => CausalLmLoss.Evaluate(model, [new([1, 5, 6], [X, X, X])]));
        StringAssert.Contains(e.Message, "no sequence has a supervised");
    }
}
