using System.Diagnostics;
using System.Globalization;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.InstructionTuning;

/// <summary>
/// Fine-tunes the trainable parameters of a causal LM on labelled sequences: seeded shuffled batches each epoch, loss =
/// Σ cross-entropy over the batch's supervised tokens / their count (transformers' mean over non-ignored labels),
/// global-norm clipping, AdamW with float32, 8-bit or paged states (<see cref="AdamW8Bit"/>; the classification
/// trainer's <see cref="OptimizerGroups"/>: decay on matrices only), linear warm-up then linear decay. When the model
/// carries a PEFT adapter its method's training hooks run as in the classification loop (LoRA groups, AdaLoRA's extra
/// loss and rank allocation). Same seed, data and settings give bit-identical weights.
/// </summary>
/// <remarks>
/// A batch with no supervised token (every response truncated away) contributes nothing: no optimizer step, and the
/// learning-rate schedule does not advance, so the schedule counts optimizer steps as a trainer's global step does.
/// The gradient norm is measured on every step, with or without clipping, so a non-finite gradient stops the run
/// before it reaches the weights.
/// </remarks>
internal sealed class CausalLmTrainingLoop(CausalLanguageModel model, CausalLmTrainingSettings settings, int paddingId, Action<string>? log, PeftModel? adapter = null)
{
    /// <summary>Trains; returns one summary per epoch (mean training loss; validation loss and perplexity when given).</summary>
    public IReadOnlyList<CausalLmEpochSummary> Run(IReadOnlyList<CausalLmSequence> train, IReadOnlyList<CausalLmSequence>? validation)
    {
        ArgumentNullException.ThrowIfNull(train);
        settings.Validate();
        if (train.Count == 0) throw new ArgumentException("the training set has no sequences", nameof(train));
        var trainable = model.NamedParameters().Where(p => p.Parameter.RequiresGrad).ToList();
        if (trainable.Count == 0) throw new InvalidOperationException("the model has no trainable parameters");
        int stepsPerEpoch = BatchPlanner.BatchesPerEpoch(train.Count, settings.BatchSize);
        int totalSteps = checked(stepsPerEpoch * settings.Epochs);
        var hooks = adapter is null ? null : AdapterTrainingHooks.Create(adapter, totalSteps);
        using var optimizer = new AdamW8Bit(OptimizerGroups.Build(trainable, hooks?.ParameterGroups(adapter!)),
            settings.OptimizerState, settings.LearningRate, weightDecay: settings.WeightDecay);
        var scheduler = new LearningRateScheduler(optimizer, new LinearWarmupSchedule(LearningRateSchedule.WarmupSteps(settings.WarmupRatio, totalSteps), totalSteps));
        var lengths = train.Select(s => s.Length).ToArray();
        var history = new List<CausalLmEpochSummary>();
        var clock = Stopwatch.StartNew();
        int step = 0, batchIndex = 0;
        for (int epoch = 0; epoch < settings.Epochs; epoch++)
        {
            model.Train();
            double lossSum = 0;
            long tokens = 0;
            foreach (var rows in BatchPlanner.Plan(lengths, settings.BatchSize, BatchOrder.Shuffled, settings.Seed, epoch))
            {
                batchIndex++;
                if (!Step(optimizer, hooks, train, rows, step, out double stepLoss, out int stepTokens, out double norm)) continue;
                step++;
                scheduler.Step();
                lossSum += stepLoss * stepTokens;
                tokens += stepTokens;
                if (batchIndex % Math.Max(1, totalSteps / 20) == 0)
                    log?.Invoke(string.Create(CultureInfo.InvariantCulture, $"step {step}/{totalSteps}: loss {stepLoss:F4}, gradient norm {norm:G4} ({clock.Elapsed.TotalSeconds:F1} s)"));
            }
            double? validationLoss = validation is null ? null : CausalLmLoss.Evaluate(model, validation, settings.BatchSize, paddingId).MeanNll;
            var summary = new CausalLmEpochSummary(epoch, tokens == 0 ? double.NaN : lossSum / tokens, validationLoss);
            history.Add(summary);
            log?.Invoke(summary.ToString());
        }
        model.Eval();
        return history;
    }

    /// <summary>
    /// One optimizer step on one batch (<paramref name="stepsDone"/> steps before it); false, with nothing changed,
    /// when the batch has no supervised token. Gives the batch's mean loss per supervised token and the gradient norm
    /// before clipping.
    /// </summary>
    private bool Step(AdamW8Bit optimizer, IAdapterTrainingHooks? hooks, IReadOnlyList<CausalLmSequence> train, int[] rows, int stepsDone,
        out double meanLoss, out int tokens, out double norm)
    {
        float sum;
        int step = stepsDone + 1;
        meanLoss = norm = 0;
        using (var scope = TensorScope.Begin())
        {
            var batch = CausalLmBatch.Collate(train, rows, paddingId);
            tokens = batch.SupervisedTokens;
            if (tokens == 0) return false;
            var loss = CausalLmLoss.Sum(model, batch, settings.LossChunkPositions);
            sum = loss.Item();
            if (!float.IsFinite(sum)) throw new TrainingDivergedException($"Causal-LM training diverged at step {step}: the loss is {sum}; no update was applied. Try a lower learning rate.") { Step = step };
            var mean = loss.Mul(1f / tokens);
            // The method's extra term (AdaLoRA's orthogonality regulariser) joins the loss that is differentiated; the
            // reported loss stays the task loss.
            if (hooks?.ExtraLoss(adapter!) is { } extra) mean = mean.Add(extra);
            mean.Backward();
        }
        norm = settings.MaxGradNorm is { } max ? GradientClipping.ClipGradNorm(optimizer.Parameters, max) : GradientClipping.GlobalNorm(optimizer.Parameters);
        if (!double.IsFinite(norm))
        {
            optimizer.ZeroGrad();
            throw new TrainingDivergedException($"Causal-LM training diverged at step {step}: the gradient norm is {norm}; no update was applied.") { Step = step };
        }
        optimizer.Step();
        // Before ZeroGrad: AdaLoRA's allocator reads the gradients of the step just taken.
        hooks?.AfterOptimizerStep(adapter!, stepsDone);
        optimizer.ZeroGrad();
        meanLoss = sum / tokens;
        return true;
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
