using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// Loss and perplexity of a causal LM on labelled sequences: Σ over supervised positions of −log p(label_t | tokens &lt; t)
/// (logits at t − 1 predict label t, as transformers' shift), divided by the number of supervised tokens.
/// </summary>
public static class CausalLmLoss
{
    /// <summary>
    /// Summed cross-entropy (nats) of one collated batch, a scalar with gradient; divide by the supervised-token count
    /// of the whole optimizer step to get transformers' mean.
    /// </summary>
    /// <param name="model">The model.</param>
    /// <param name="batch">The batch.</param>
    /// <param name="chunkPositions">
    /// 0: one [batch, seq − 1, vocab] logits tensor. Otherwise the head and the loss run on this many positions at a time,
    /// each chunk under a checkpoint (<see cref="Checkpointing"/>): no more than a [batch, chunk, vocab] block of logits,
    /// softmax and logit gradient ever exists, recomputed in backward (one more head product per step). The result is
    /// the sum of the chunks' sums: equal to the plain one up to the order of the float additions.
    /// </param>
    internal static Tensor Sum(CausalLanguageModel model, CausalLmBatch batch, int chunkPositions = 0)
    {
        // An input soft prompt (prompt tuning, P-tuning) adds n leading positions that predict no label (PEFT pads
        // the labels with n × −100), and the last position predicts nothing: only the t − 1 predicting positions of the
        // real tokens go through the vocabulary head.
        int t = batch.Labels.Size(1);
        int predicting = t - 1;
        var hidden = model.Decoder.Forward(batch.InputIds, batch.AttentionMask);
        hidden = hidden.Narrow(1, hidden.Size(1) - t, predicting);
        if (chunkPositions <= 0)
            return model.Project(hidden).CrossEntropy(batch.Labels.Narrow(1, 1, predicting).Contiguous(), reduction: Reduction.Sum);
        Tensor? total = null;
        for (int start = 0; start < predicting; start += chunkPositions)
        {
            int length = Math.Min(chunkPositions, predicting - start);
            var labels = batch.Labels.Narrow(1, start + 1, length).Contiguous();
            var part = Checkpointing.Checkpoint(h => model.Project(h).CrossEntropy(labels, reduction: Reduction.Sum), hidden.Narrow(1, start, length), []);
            total = total is null ? part : total.Add(part);
        }
        return total!;
    }

    /// <summary>
    /// Mean negative log-likelihood per supervised token over <paramref name="sequences"/> (nats; no gradient, dropout
    /// off) and the number of tokens it averages. Perplexity = exp(mean).
    /// </summary>
    /// <exception cref="ArgumentException">No sequence has a supervised token.</exception>
    public static (double MeanNll, long Tokens) Evaluate(CausalLanguageModel model, IReadOnlyList<CausalLmSequence> sequences, int batchSize = 16, int paddingId = 0)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(sequences);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batchSize);
        bool wasTraining = model.IsTraining;
        model.Eval();
        double sum = 0;
        long tokens = 0;
        try
        {
            using var _ = Autograd.NoGrad();
            for (int start = 0; start < sequences.Count; start += batchSize)
            {
                var rows = Enumerable.Range(start, Math.Min(batchSize, sequences.Count - start)).ToArray();
                using var scope = TensorScope.Begin();
                var batch = CausalLmBatch.Collate(sequences, rows, paddingId);
                if (batch.SupervisedTokens == 0) continue;
                sum += Sum(model, batch).Item();
                tokens += batch.SupervisedTokens;
            }
        }
        finally
        {
            if (wasTraining) model.Train();
        }
        if (tokens == 0) throw new ArgumentException("no sequence has a supervised (label ≠ −100) token to evaluate", nameof(sequences));
        return (sum / tokens, tokens);
    }
}
