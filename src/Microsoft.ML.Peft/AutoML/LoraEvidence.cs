using System.Diagnostics;
using Microsoft.ML.Data;
using Microsoft.ML.Peft.Bayesian;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.AutoML;

/// <summary>
/// The Laplace-LoRA log marginal likelihood (model evidence) of a trained LoRA text classifier: the score an
/// evidence-driven sweep minimises the negative of, computed on the training data alone (Yang et al. 2024;
/// <c>../shared/docs/peft-reference.md</c> §3), or its conditional form log p(D₂ | D₁) (Lotfi et al. 2022).
/// </summary>
public static class LoraEvidence
{
    /// <summary>
    /// Fits a Laplace posterior over the classifier's LoRA matrices (and head) on <paramref name="trainingData"/>,
    /// chooses or applies the prior precision and returns the evidence; scores <paramref name="validationData"/> with
    /// the MAP model (and the probit predictive if asked) when given. The model is left exactly as it was.
    /// </summary>
    /// <param name="model">A fitted <see cref="LoraTextClassificationTransformer"/> with a PEFT LoRA adapter.</param>
    /// <param name="trainingData">The rows the model was trained on, with its text and label columns (label as at the trainer's input).</param>
    /// <param name="validationData">Optional held-out rows with the same columns.</param>
    /// <param name="options">Laplace and prior settings.</param>
    /// <param name="cancellationToken">Checked between Laplace batches.</param>
    /// <exception cref="ArgumentException">The model has no LoRA parameters, a column is missing or mistyped, the label
    /// classes do not match the model's, or the data has no labeled rows.</exception>
    public static LoraEvidenceResult Compute(LoraTextClassificationTransformer model, IDataView trainingData, IDataView? validationData = null,
        LoraEvidenceOptions? options = null, CancellationToken cancellationToken = default) =>
        ComputeCore(model, trainingData, heldOutData: null, validationData, options, cancellationToken);

    /// <summary>
    /// The conditional log marginal likelihood log p(D₂ | D₁) (Lotfi et al. 2022) of a classifier trained on D₁ only:
    /// fits the Laplace posterior on <paramref name="conditioningData"/> (D₁) as <see cref="Compute(LoraTextClassificationTransformer, IDataView, IDataView?, LoraEvidenceOptions?, CancellationToken)"/>
    /// does, then sums the log probit predictive of <paramref name="heldOutData"/> (D₂) into
    /// <see cref="LoraEvidenceResult.ConditionalLogMarginalLikelihood"/>. The plain evidence of D₁ is reported too.
    /// </summary>
    /// <param name="model">A fitted <see cref="LoraTextClassificationTransformer"/> with a PEFT LoRA adapter, trained on D₁ alone.</param>
    /// <param name="conditioningData">D₁: the rows the model was trained on.</param>
    /// <param name="heldOutData">D₂: further training rows the model has not seen, with the same columns.</param>
    /// <param name="validationData">Optional validation rows, scored for reporting only.</param>
    /// <param name="options">Laplace and prior settings.</param>
    /// <param name="cancellationToken">Checked between Laplace batches.</param>
    /// <exception cref="ArgumentException">As <see cref="Compute(LoraTextClassificationTransformer, IDataView, IDataView?, LoraEvidenceOptions?, CancellationToken)"/>; also when D₂ has no labeled rows.</exception>
    public static LoraEvidenceResult ComputeConditional(LoraTextClassificationTransformer model, IDataView conditioningData, IDataView heldOutData,
        IDataView? validationData = null, LoraEvidenceOptions? options = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(heldOutData);
        return ComputeCore(model, conditioningData, heldOutData, validationData, options, cancellationToken);
    }

    private static LoraEvidenceResult ComputeCore(LoraTextClassificationTransformer model, IDataView trainingData, IDataView? heldOutData, IDataView? validationData,
        LoraEvidenceOptions? options, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(trainingData);
        options ??= new LoraEvidenceOptions();
        options.Validate();
        var backend = model.Scorer.Backend as PeftTextClassifier
            ?? throw new ArgumentException($"LoraEvidence: the transformer has no LoRA parameters (its model is a {model.Scorer.Backend.GetType().Name}, not a PEFT LoRA classifier)", nameof(model));
        var train = ReadExamples(model, trainingData, "the training data");
        var heldOut = heldOutData is null ? null : ReadExamples(model, heldOutData, "the held-out training rows (D₂)");
        var validation = validationData is null ? null : ReadExamples(model, validationData, "the validation set");

        backend.Module.Eval();
        double? accuracy = null, logLoss = null;
        if (validation is not null)
        {
            var (loss, acc) = ClassifierInference.Evaluate(backend, validation, backend.PaddingId, model.Scorer.BatchSize);
            (accuracy, logLoss) = (acc, loss);
        }

        var watch = Stopwatch.StartNew();
        var laplaceOptions = options.Laplace with
        {
            HeadModules = options.IncludeHead ? backend.Model.ClassifierHeadNames : [],
            PriorPrecision = options.PriorPrecision ?? options.Laplace.PriorPrecision,
        };
        // The posterior's logits function takes a tensor of row indices into source.Rows (the training rows while
        // fitting, the validation rows while predicting): LaplaceLora passes inputs through to it untouched.
        var source = new RowSource(train);
        Tensor Logits(Tensor rows) => backend.Forward(TokenBatch.Collate(source.Rows, rows.ToInt32Array(), backend.PaddingId));
        using var laplace = LaplaceLora.Fit(backend.Peft, Logits, Batches(train, options.BatchSize, cancellationToken), laplaceOptions);
        double lambda = options.PriorPrecision ?? laplace.OptimizePriorPrecision(options.PriorTuning)[0];
        double evidence = laplace.LogMarginalLikelihood();
        var laplaceTime = watch.Elapsed;

        double? conditional = null;
        if (heldOut is not null)
        {
            source.Rows = heldOut;
            conditional = -ScoreProbit(laplace, heldOut, options.BatchSize, cancellationToken).LogLoss * heldOut.Count;
        }

        double? laplaceAccuracy = null, laplaceLogLoss = null;
        if (validation is not null && options.LaplaceValidation)
        {
            source.Rows = validation;
            (laplaceAccuracy, laplaceLogLoss) = ScoreProbit(laplace, validation, options.BatchSize, cancellationToken);
        }

        return new LoraEvidenceResult
        {
            LogMarginalLikelihood = evidence,
            ConditionalLogMarginalLikelihood = conditional,
            ConditionalExamples = heldOut?.Count,
            PriorPrecision = lambda,
            PriorPrecisionTuned = options.PriorPrecision is null,
            TrainLogLikelihood = laplace.TrainLogLikelihood,
            TrainingExamples = laplace.DataCount,
            PosteriorParameters = laplace.Blocks.Sum(b => b.ParameterCount),
            ValidationAccuracy = accuracy,
            ValidationLogLoss = logLoss,
            LaplaceValidationAccuracy = laplaceAccuracy,
            LaplaceValidationLogLoss = laplaceLogLoss,
            LaplaceTime = laplaceTime,
        };
    }

    /// <summary>
    /// Batches of rows that all have the same token count, so no padding position reaches the K-FAC input factor
    /// (which averages over every position a LoRA matrix sees): the evidence then does not depend on how rows are
    /// batched. Shorter rows first, data order within a length; the input tensor carries the row indices.
    /// </summary>
    internal static IEnumerable<LaplaceBatch> Batches(IReadOnlyList<ClassificationExample> examples, int batchSize, CancellationToken cancellationToken)
    {
        var byLength = Enumerable.Range(0, examples.Count).GroupBy(i => examples[i].Length).OrderBy(g => g.Key);
        foreach (var group in byLength)
        {
            foreach (var chunk in group.Chunk(batchSize))
            {
                cancellationToken.ThrowIfCancellationRequested();
                var labels = chunk.Select(i => examples[i].Label).ToArray();
                Tensor rows;
                using (TensorScope.Untracked()) rows = Tensor.FromInt32(chunk, chunk.Length);
                yield return new LaplaceBatch(rows, labels);
            }
        }
    }

    private static (double Accuracy, double LogLoss) ScoreProbit(LaplaceLora laplace, List<ClassificationExample> examples,
        int batchSize, CancellationToken cancellationToken)
    {
        int correct = 0, classes = laplace.Classes;
        double nll = 0;
        for (int start = 0; start < examples.Count; start += batchSize)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var chunk = examples.GetRange(start, Math.Min(batchSize, examples.Count - start));
            Tensor rows;
            using (TensorScope.Untracked()) rows = Tensor.FromInt32(Enumerable.Range(start, chunk.Count).ToArray(), chunk.Count);
            double[] p = laplace.PredictProbit(rows);
            for (int n = 0; n < chunk.Count; n++)
            {
                var row = p.AsSpan(n * classes, classes);
                nll -= Math.Log(Math.Max(row[chunk[n].Label], double.Epsilon));
                int best = 0;
                for (int c = 1; c < classes; c++) if (row[c] > row[best]) best = c;
                if (best == chunk[n].Label) correct++;
            }
        }
        return ((double)correct / examples.Count, nll / examples.Count);
    }

    private static List<ClassificationExample> ReadExamples(LoraTextClassificationTransformer model, IDataView data, string what)
    {
        var columns = model.Columns;
        var bound = columns.Bind(data.Schema, what, needLabel: true);
        if (columns.Kind == ClassificationKind.Multiclass && bound.Label!.Value.Type is KeyDataViewType { Count: var count } && count != (ulong)model.NumberOfClasses)
        {
            throw new ArgumentOutOfRangeException(nameof(data),
                $"LoraEvidence: the label column '{columns.Label}' of {what} has {count} classes but the model was trained on {model.NumberOfClasses}; map it with the training pipeline's MapValueToKey");
        }
        var texts = LabeledTexts.Read(data, bound, columns.Kind);
        if (texts.Count == 0) throw new ArgumentException($"LoraEvidence: {what} has no rows with a label in column '{columns.Label}'", nameof(data));
        var encoder = model.Scorer.Encoder;
        var examples = new List<ClassificationExample>(texts.Count);
        for (int i = 0; i < texts.Count; i++)
        {
            var (ids, types) = encoder.Encode(texts.Sentence1[i], texts.Sentence2?[i], out _);
            examples.Add(new ClassificationExample(ids, types, texts.Labels[i]));
        }
        return examples;
    }

    private sealed class RowSource(List<ClassificationExample> rows)
    {
        public List<ClassificationExample> Rows { get; set; } = rows;
    }
}
