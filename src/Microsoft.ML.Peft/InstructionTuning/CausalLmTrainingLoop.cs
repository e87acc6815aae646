using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// Fine-tunes the trainable parameters of a causal LM on labelled sequences: seeded shuffled batches each epoch, loss =
/// Σ cross-entropy over the batch's supervised tokens / their count (transformers' mean over non-ignored labels),
/// global-norm clipping, AdamW with float32, 8-bit or paged states (<see cref="AdamW8Bit"/>; decay on matrices only),
/// linear warm-up then linear decay. Same seed, data and settings give bit-identical weights.
/// </summary>
internal sealed class CausalLmTrainingLoop(CausalLanguageModel model, CausalLmTrainingSettings settings, int paddingId, Action<string>? log)
{
    /// <summary>Trains; returns one summary per epoch (mean training loss; validation loss and perplexity when given).</summary>
    public IReadOnlyList<CausalLmEpochSummary> Run(IReadOnlyList<CausalLmSequence> train, IReadOnlyList<CausalLmSequence>? validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        settings.Validate();
        if (train.Count == 0) throw new ArgumentException("the training set has no sequences", nameof(train));
        var trainable = model.NamedParameters().Where(p => p.Parameter.RequiresGrad).Select(p => p.Parameter).ToList();
        if (trainable.Count == 0) throw new InvalidOperationException("the model has no trainable parameters");
        using var optimizer = new AdamW8Bit(
            [
                new ParameterGroup(trainable.Where(p => p.Rank >= 2)),
                new ParameterGroup(trainable.Where(p => p.Rank < 2), weightDecay: 0),
            ],
            settings.OptimizerState, settings.LearningRate, weightDecay: settings.WeightDecay);
        int stepsPerEpoch = BatchPlanner.BatchesPerEpoch(train.Count, settings.BatchSize);
        int totalSteps = checked(stepsPerEpoch * settings.Epochs);
        var scheduler = new LearningRateScheduler(optimizer, new LinearWarmupSchedule((int)Math.Ceiling(settings.WarmupRatio * totalSteps), totalSteps));
        var lengths = train.Select(s => s.Length).ToArray();
        var history = new List<CausalLmEpochSummary>();
        var clock = Stopwatch.StartNew();
        int step = 0;
        for (int epoch = 0; epoch < settings.Epochs; epoch++)
        {
            model.Train();
            double lossSum = 0;
            long tokens = 0;
            foreach (var rows in BatchPlanner.Plan(lengths, settings.BatchSize, BatchOrder.Shuffled, settings.Seed, epoch))
            {
                step++;
                double stepLoss = Step(optimizer, train, rows, step, out int stepTokens);
                scheduler.Step();
                lossSum += stepLoss * stepTokens;
                tokens += stepTokens;
                if (step % Math.Max(1, totalSteps / 20) == 0)
                    log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"step {step}/{totalSteps}: loss {stepLoss:F4} ({clock.Elapsed.TotalSeconds:F1} s)"));
            }
            double? validationLoss = validation is null ? null : CausalLmLoss.Evaluate(model, validation, settings.BatchSize, paddingId).MeanNll;
            var summary = new CausalLmEpochSummary(epoch, tokens == 0 ? double.NaN : lossSum / tokens, validationLoss);
            history.Add(summary);
            log?.Invoke(summary.ToString());
        }
        model.Eval();
        return history;
    }

    /// <summary>One optimizer step on one batch; returns its mean loss per supervised token.</summary>
    private double Step(AdamW8Bit optimizer, IReadOnlyList<CausalLmSequence> train, int[] rows, int step, out int tokens)
    {
        float sum;
        using (var scope = TensorScope.Begin())
        {
            var batch = CausalLmBatch.Collate(train, rows, paddingId);
            tokens = batch.SupervisedTokens;
            if (tokens == 0) return 0;
            var loss = CausalLmLoss.Sum(model, batch);
            sum = loss.Item();
            if (!float.IsFinite(sum)) throw new TrainingDivergedException($"Causal-LM training diverged at step {step}: the loss is {sum}; no update was applied. Try a lower learning rate.") { Step = step };
            loss.Mul(1f / tokens).Backward();
        }
        double norm = settings.MaxGradNorm is { } max ? GradientClipping.ClipGradNorm(optimizer.Parameters, max) : 0;
        if (!double.IsFinite(norm))
        {
            optimizer.ZeroGrad();
            throw new TrainingDivergedException($"Causal-LM training diverged at step {step}: the gradient norm is {norm}; no update was applied.") { Step = step };
        }
        optimizer.Step();
        optimizer.ZeroGrad();
        return sum / tokens;
    }
}

/// <summary>Figures of one causal-LM training epoch.</summary>
/// <param name="Epoch">0-based epoch.</param>
/// <param name="TrainLoss">Mean training cross-entropy per supervised token (nats), under dropout, as the weights moved.</param>
/// <param name="ValidationLoss">Mean validation cross-entropy per supervised token after the epoch, if a validation set was given.</param>
public sealed record CausalLmEpochSummary(int Epoch, double TrainLoss, double? ValidationLoss)
{
    /// <summary>exp(validation loss), if any.</summary>
    public double? ValidationPerplexity => ValidationLoss is { } l ? Math.Exp(l) : null;

    /// <inheritdoc/>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"epoch {Epoch + 1}: train loss {TrainLoss:F4}{(ValidationLoss is { } v ? $", validation loss {v:F4}, perplexity {Math.Exp(v):F3}" : "")}");
}
