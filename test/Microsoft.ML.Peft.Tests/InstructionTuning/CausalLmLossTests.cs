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
    [DataRow(1)]
    [DataRow(3)]
    [DataRow(64)]
    public void ChunkedHeadAndLoss_EqualsThePlainLoss_AndItsGradients(int chunk)
    {
        // LoRA with random B on every linear layer, plus the tied embedding/head table trainable: its gradient gathers
        // the lookup's and every chunk's head contributions, the case where the order of additions differs most.
        CausalLmSequence[] sequences =
        [
            new([1, 403, 261, 290, 319, 13, 282, 2], [X, X, X, X, X, 13, 282, 2]),
            new([1, 66, 77, 88], [X, X, 77, 88]),
        ];
        var batch = CausalLmBatch.Collate(sequences, [0, 1], paddingId: 0);
        (float Loss, Dictionary<string, float[]> Grads) Run(int chunkPositions)
        {
            var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
            Microsoft.ML.Peft.Tuners.PeftModel.Inject(model, new Microsoft.ML.Peft.Lora.LoraConfig
            {
                TargetModules = "all-linear", Rank = 4, Alpha = 8, InitLoraWeights = Microsoft.ML.Peft.Lora.LoraInit.Random,
            }, "default", new Generator(4));
            model.Decoder.InputEmbeddings.Weight.RequiresGrad = true;
            model.Eval();
            float loss;
            using (TensorScope.Begin())
            {
                var sum = CausalLmLoss.Sum(model, batch, chunkPositions);
                loss = sum.Item();
                sum.Backward();
            }
            return (loss, model.NamedParameters().Where(p => p.Parameter.Grad is not null).ToDictionary(p => p.Name, p => p.Parameter.Grad!.ToArray()));
        }
        var plain = Run(0);
        var chunked = Run(chunk);
        Assert.AreEqual(plain.Loss, chunked.Loss, 1e-6 * Math.Abs(plain.Loss), "summed loss");
        CollectionAssert.AreEquivalent(plain.Grads.Keys.ToArray(), chunked.Grads.Keys.ToArray());
        Assert.IsGreaterThan(70, plain.Grads.Count, "LoRA A and B of 35 layers plus the embedding table");
        foreach (var (name, grad) in plain.Grads)
        {
            // Each position's logit gradient is the same in both; only sums over positions (the head's weight
            // gradient, the rank-r products) regroup, so the difference is float rounding of those sums.
            double scale = grad.Max(v => Math.Abs((double)v));
            Assert.IsGreaterThan(0.0, scale, name);
            Assert.IsLessThan(1e-5 * scale, grad.Zip(chunked.Grads[name], (a, b) => Math.Abs((double)a - b)).Max(), $"{name} (chunk {chunk})");
        }
    }

    [TestMethod]
    [DataRow(0)]
    [DataRow(2)]
    [DataRow(5)]
    public void Sum_WithAnInputSoftPrompt_ScoresOnlyTheRealTokens(int chunk)
    {
        // Prompt tuning puts 3 virtual tokens in front: the logits have 3 + seq positions and real token t's logits sit
        // at 3 + t. Reference: each sequence alone through Forward, −log softmax in double at 3 + t − 1 for label t.
        const int n = 3;
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        Microsoft.ML.Peft.Tuners.PeftModel.Inject(model, new Microsoft.ML.Peft.PromptTuning.PromptTuningConfig { NumVirtualTokens = n }, "default", new Generator(6));
        model.Eval();
        CausalLmSequence[] sequences =
        [
            new([1, 403, 261, 290, 319, 13, 282, 2], [X, X, X, X, X, 13, 282, 2]),
            new([1, 66, 77, 88], [X, X, 77, 88]),
        ];
        double expectedSum = 0;
        using (TensorScope.Begin())
        using (Autograd.NoGrad())
        {
            foreach (var s in sequences)
            {
                var output = model.Forward(Tensor.FromInt32(s.InputIds, 1, s.Length));
                Assert.AreEqual(n + s.Length, output.Size(1), "the logits keep the virtual tokens' positions");
                var logits = output.ToArray();
                int v = model.VocabSize;
                for (int t = 1; t < s.Length; t++)
                {
                    if (s.Labels[t] == X) continue;
                    int row = (n + t - 1) * v;
                    double max = double.NegativeInfinity;
                    for (int c = 0; c < v; c++) max = Math.Max(max, logits[row + c]);
                    double z = 0;
                    for (int c = 0; c < v; c++) z += Math.Exp(logits[row + c] - max);
                    expectedSum += -(logits[row + s.Labels[t]] - max - Math.Log(z));
                }
            }
            var batch = CausalLmBatch.Collate(sequences, [0, 1], paddingId: 0);
            Assert.AreEqual(expectedSum, CausalLmLoss.Sum(model, batch, chunk).Item(), 1e-5 * expectedSum);
        }
    }

    [TestMethod]
    public void Evaluate_NothingSupervised_IsAnError()
    {
        var model = PretrainedModel.LoadForCausalLM(TestPaths.Stories260K);
        var e = Assert.ThrowsExactly<ArgumentException>(() => CausalLmLoss.Evaluate(model, [new([1, 5, 6], [X, X, X])]));
        StringAssert.Contains(e.Message, "no sequence has a supervised");
    }
}
