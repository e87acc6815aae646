using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft.Tests.Training;

/// <summary>
/// A small bag-of-embeddings classifier for loop tests: a frozen random embedding table, the masked mean over the
/// tokens, then a trainable projection (LoRA-like: frozen base, trainable matrix and bias). Forward number
/// <see cref="PoisonForward"/> (1-based) returns NaN logits, to exercise divergence handling.
/// </summary>
internal sealed class TinyClassifier : Module, ISequenceClassifier
{
    private readonly Parameter table;
    private readonly ModuleSlot<LinearLayer> head;

    /// <param name="vocab">Embedding rows.</param>
    /// <param name="dim">Embedding width.</param>
    /// <param name="numLabels">Classes.</param>
    /// <param name="seed">Seed of the head (and of the table when <paramref name="baseSeed"/> is null).</param>
    /// <param name="baseSeed">Seed of the frozen table: the "pretrained weights", fixed across runs.</param>
    public TinyClassifier(int vocab, int dim, int numLabels, ulong seed, ulong? baseSeed = null)
    {
        var generator = new Generator(baseSeed ?? seed);
        Tensor t;
        using (TensorScope.Untracked()) t = Tensor.Randn(generator, vocab, dim);
        table = RegisterParameter("embed", t);
        t.RequiresGrad = false;
        head = RegisterModule<LinearLayer>("score", new Linear(dim, numLabels, baseSeed is null ? generator : new Generator(seed)));
        NumLabels = numLabels;
    }

    public Module Module => this;

    public int NumLabels { get; }

    public IReadOnlyList<Generator> RandomStreams => [];

    public int Forwards { get; private set; }

    public int PoisonForward { get; set; } = -1;

    public Tensor Forward(TokenBatch batch)
    {
        Forwards++;
        int b = batch.BatchSize, t = batch.SequenceLength;
        var ids = Tensor.FromInt32(batch.InputIds, b, t);
        var mask = new float[b * t];
        for (int i = 0; i < mask.Length; i++) mask[i] = batch.AttentionMask[i];
        var lengths = batch.Lengths.Select(l => 1f / l).ToArray();
        var embedded = table.Value.Embedding(ids);                                   // [b, t, d]
        var pooled = embedded.Mul(Tensor.From(mask, b, t, 1)).Sum(1).Mul(Tensor.From(lengths, b, 1));
        var logits = head.Module.Forward(pooled);
        return Forwards == PoisonForward ? logits.Mul(float.NaN) : logits;
    }

    /// <summary>Trainable parameter values by name (copies).</summary>
    public Dictionary<string, float[]> TrainableValues() =>
        NamedParameters().Where(p => p.Parameter.RequiresGrad).ToDictionary(p => p.Name, p => p.Parameter.ToArray());

    /// <summary>
    /// A separable toy task: class c rows draw tokens mostly from their own block of the vocabulary, with varying
    /// lengths 2..9.
    /// </summary>
    public static List<ClassificationExample> ToyData(int rows, int numLabels, int vocab, ulong seed)
    {
        var g = new Generator(seed);
        var result = new List<ClassificationExample>(rows);
        int block = vocab / numLabels;
        for (int i = 0; i < rows; i++)
        {
            int label = i % numLabels;
            int length = 2 + (int)(g.NextUInt64() % 8);
            var ids = new int[length];
            for (int j = 0; j < length; j++)
            {
                bool own = g.NextUniform() < 0.8f;
                int cls = own ? label : (int)(g.NextUInt64() % (ulong)numLabels);
                ids[j] = cls * block + (int)(g.NextUInt64() % (ulong)block);
            }
            result.Add(new ClassificationExample(ids, null, label));
        }
        return result;
    }
}

/// <summary>An <see cref="IProgress{T}"/> that runs a callback synchronously (Progress&lt;T&gt; would post it).</summary>
internal sealed class SyncProgress<T>(Action<T> action) : IProgress<T>
{
    public void Report(T value) => action(value);
}
