using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Training;

/// <summary>No-grad scoring of tokenized rows: class probabilities, and the validation loss and accuracy.</summary>
internal static class ClassifierInference
{
    /// <summary>
    /// Logits [rows][classes] for token rows, computed in batches of <paramref name="batchSize"/> consecutive rows in
    /// evaluation mode (dropout off), without autograd.
    /// </summary>
    public static float[][] PredictLogits(ISequenceClassifier model, IReadOnlyList<int[]> rows, IReadOnlyList<int[]?>? typeRows, int paddingId, int batchSize)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(rows);
        var result = new float[rows.Count][];
        bool wasTraining = model.Module.IsTraining;
        model.Module.Eval();
        try
        {
            for (int start = 0; start < rows.Count; start += batchSize)
            {
                int n = Math.Min(batchSize, rows.Count - start);
                var batchRows = new int[n][];
                var batchTypes = typeRows is null ? null : new int[]?[n];
                for (int i = 0; i < n; i++)
                {
                    batchRows[i] = rows[start + i];
                    if (batchTypes is not null) batchTypes[i] = typeRows![start + i];
                }
                var logits = Logits(model, TokenBatch.Collate(batchRows, batchTypes, paddingId));
                logits.CopyTo(result, start);
            }
        }
        finally
        {
            model.Module.Train(wasTraining);
        }
        return result;
    }

    /// <summary>Mean cross-entropy (nats, in double) and accuracy (arg-max, ties to the lowest class) over examples.</summary>
    public static (double Loss, double Accuracy) Evaluate(ISequenceClassifier model, IReadOnlyList<ClassificationExample> examples, int paddingId, int batchSize)
    {
        var logits = PredictLogits(model, examples.Select(e => e.TokenIds).ToArray(), examples.Select(e => e.TokenTypeIds).ToArray(), paddingId, batchSize);
        double loss = 0;
        int correct = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            var p = Softmax(logits[i]);
            loss -= Math.Log(Math.Max(p[examples[i].Label], double.Epsilon));
            if (ArgMax(p) == examples[i].Label) correct++;
        }
        return (loss / examples.Count, (double)correct / examples.Count);
    }

    /// <summary>Logits of one batch as [rows][classes] (no autograd).</summary>
    public static float[][] Logits(ISequenceClassifier model, TokenBatch batch)
    {
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var logits = model.Forward(batch);
        int classes = model.NumLabels;
        if (logits.Rank != 2 || logits.Size(0) != batch.BatchSize || logits.Size(1) != classes)
            throw new InvalidOperationException($"the model returned logits {logits} for a batch of {batch.BatchSize}; expected [{batch.BatchSize}, {classes}]");
        var flat = logits.ToArray();
        var result = new float[batch.BatchSize][];
        for (int i = 0; i < result.Length; i++) result[i] = flat.AsSpan(i * classes, classes).ToArray();
        return result;
    }

    /// <summary>softmax(logits) computed in double (max-subtracted) and rounded to float once per entry.</summary>
    public static float[] Softmax(ReadOnlySpan<float> logits)
    {
        double max = double.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        double sum = 0;
        var e = new double[logits.Length];
        for (int i = 0; i < logits.Length; i++) sum += e[i] = Math.Exp(logits[i] - max);
        var result = new float[logits.Length];
        for (int i = 0; i < logits.Length; i++) result[i] = (float)(e[i] / sum);
        return result;
    }

    /// <summary>Index of the largest value (the first one on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
        {
            if (values[i] > values[best]) best = i;
        }
        return best;
    }
}
