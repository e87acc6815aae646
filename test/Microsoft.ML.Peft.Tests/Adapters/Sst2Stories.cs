using System.Globalization;
using Microsoft.ML.Peft.AdapterTraining;
using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tokenizers;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Tests.Adapters;

/// <summary>
/// A short real training run shared by the adapter and selective-method tests: stories260K as a 2-label sequence
/// classifier (last-token pooling), the first rows of SST-2's training split, AdamW on whatever the method made
/// trainable, and the mean cross-entropy over those rows before and after (evaluation mode, no dropout).
/// </summary>
internal static class Sst2Stories
{
    private const int MaxTokens = 16;
    private static readonly Lazy<Batch> Data = new(LoadRows);

    /// <summary>One full batch: token ids and mask [rows, tokens] row-major, and a label per row.</summary>
    public sealed record Batch(int[] Ids, int[] Mask, int[] Labels, int Rows, int Tokens);

    /// <summary>The steps every method trains for in these tests.</summary>
    public const int Steps = 5;

    /// <summary>The learning rate every method trains with in these tests.</summary>
    public const double LearningRate = 1e-2;

    private static readonly Lazy<float> HeadOnly = new(() =>
    {
        var model = LoadModel();
        var peft = PeftModel.Inject(model, global::Microsoft.ML.Peft.Selective.SelectiveConfig.HeadOnly("score"));
        return Train(model, peft, Steps, LearningRate).After;
    });

    /// <summary>The loss after the same training of the score head alone on the frozen base (linear probing).</summary>
    public static float HeadOnlyLoss => HeadOnly.Value;

    /// <summary>The classifier with a fresh seeded score head.</summary>
    public static SequenceClassificationModel LoadModel() => PretrainedModel.LoadForSequenceClassification(TestPaths.Stories260K, numLabels: 2);

    /// <summary>Trains <paramref name="steps"/> full-batch AdamW steps; returns the loss before and after.</summary>
    public static (float Before, float After) Train(SequenceClassificationModel model, PeftModel peft, int steps, double learningRate) =>
        Train(model, peft, steps, learningRate, hooks: null);

    /// <summary>
    /// The same run through a method's training hooks (<see cref="AdapterTrainingHooks.Create"/>, the trainers' path):
    /// their optimizer groups, their extra loss term added before backward, and their callback after each optimizer
    /// step, for methods that need more than plain AdamW on the trainable parameters (AdaLoRA's regulariser and rank
    /// allocation, LoRA+'s groups). The reported losses are the task loss alone.
    /// </summary>
    public static (float Before, float After) Train(SequenceClassificationModel model, PeftModel peft, int steps, double learningRate, IAdapterTrainingHooks? hooks) =>
        Train(model, peft, steps, learningRate, hooks, Data.Value);

    /// <summary>The same run on another model's <paramref name="batch"/> (e.g. the tiny BERT fixture's encoding of these rows).</summary>
    public static (float Before, float After) Train(SequenceClassificationModel model, PeftModel peft, int steps, double learningRate, IAdapterTrainingHooks? hooks, Batch batch)
    {
        var (ids, mask, labels, rows, tokens) = batch;
        var targets = Tensor.FromInt32(labels, rows);
        float Loss()
        {
            model.Eval();
            using var scope = TensorScope.Begin();
            using var noGrad = Autograd.NoGrad();
            return model.Forward(ids, mask, null, rows, tokens).CrossEntropy(targets).Item();
        }

        float before = Loss();
        var optimizer = hooks is null
            ? new AdamW(peft.TrainableParameters().Select(p => p.Parameter), learningRate: learningRate)
            : new AdamW(hooks.ParameterGroups(peft), learningRate: learningRate);
        model.Train();
        for (int step = 0; step < steps; step++)
        {
            using var scope = TensorScope.Begin();
            var loss = model.Forward(ids, mask, null, rows, tokens).CrossEntropy(targets);
            if (hooks?.ExtraLoss(peft) is { } extra) loss = loss.Add(extra);
            loss.Backward();
            optimizer.Step();
            hooks?.AfterOptimizerStep(peft, step);
            optimizer.ZeroGrad();
        }
        return (before, Loss());
    }

    /// <summary>The first 16 rows of SST-2 train, right-padded (or cut) to 16 tokens.</summary>
    private static Batch LoadRows()
    {
        var tokenizer = TokenizerLoader.FromFolder(TestPaths.Stories260K);
        var lines = File.ReadLines(Path.Combine(TestPaths.Data, "sst2", "train.tsv")).Skip(1).Take(16).ToList();
        int rows = lines.Count;
        var ids = new int[rows * MaxTokens];
        var mask = new int[rows * MaxTokens];
        var labels = new int[rows];
        for (int r = 0; r < rows; r++)
        {
            var parts = lines[r].Split('\t');
            labels[r] = int.Parse(parts[1], CultureInfo.InvariantCulture);
            var tokens = new List<int> { tokenizer.BeginningOfSentenceTokenId ?? 1 };
            tokens.AddRange(tokenizer.EncodeToIds(parts[0].Trim()));
            for (int t = 0; t < Math.Min(tokens.Count, MaxTokens); t++)
            {
                ids[r * MaxTokens + t] = tokens[t];
                mask[r * MaxTokens + t] = 1;
            }
        }
        return new Batch(ids, mask, labels, rows, MaxTokens);
    }
}
