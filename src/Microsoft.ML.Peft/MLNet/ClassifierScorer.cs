using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft;

/// <summary>
/// Scores texts with a trained backend: the training-time encoding, then logits in batches of
/// <see cref="BatchSize"/> without autograd. Calls are serialised (the model's modules hold per-call state).
/// </summary>
internal sealed class ClassifierScorer : IBatchTextPredictor<float[]>
{
    private readonly object gate = new();

    public ClassifierScorer(ITextClassifierBackend backend, TextEncoder encoder, int batchSize)
    {
        Backend = backend;
        Encoder = encoder;
        BatchSize = batchSize;
    }

    public ITextClassifierBackend Backend { get; }

    public TextEncoder Encoder { get; }

    public int BatchSize { get; }

    /// <summary>The lock that serialises use of the model (shared with a <see cref="LaplaceCalibratorTransformer"/> on the same model).</summary>
    internal object Gate => gate;

    /// <summary>Logits [rows][classes] for consecutive rows (one forward pass per <see cref="BatchSize"/> rows).</summary>
    public float[][] Logits(IReadOnlyList<string> sentence1, IReadOnlyList<string>? sentence2)
    {
        var ids = new int[sentence1.Count][];
        var types = Encoder.UseTokenTypeIds ? new int[]?[sentence1.Count] : null;
        for (int i = 0; i < ids.Length; i++)
        {
            var (rowIds, rowTypes) = Encoder.Encode(sentence1[i], sentence2?[i], out _);
            ids[i] = rowIds;
            if (types is not null) types[i] = rowTypes;
        }
        lock (gate) return ClassifierInference.PredictLogits(Backend, ids, types, Backend.PaddingId, BatchSize);
    }

    float[][] IBatchTextPredictor<float[]>.Predict(IReadOnlyList<string> sentence1, IReadOnlyList<string>? sentence2) => Logits(sentence1, sentence2);
}
