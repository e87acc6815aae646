using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Training;

namespace Microsoft.ML.Peft;

/// <summary>One row's ensemble prediction: mean class probabilities (double), their entropy and the mutual information.</summary>
/// <param name="Probabilities">p̄: the members' mean softmax, each member's softmax computed in double.</param>
/// <param name="LogOdds">Binary: ln(p̄₁/p̄₀), or the member's margin itself when there is one member; multiclass: 0.</param>
/// <param name="Entropy">H[p̄] in nats.</param>
/// <param name="MutualInformation">H[p̄] − mean over members of H[p_m], in nats (≥ 0 up to rounding).</param>
internal sealed record EnsembleRowPrediction(double[] Probabilities, double LogOdds, double Entropy, double MutualInformation);

/// <summary>
/// Scores texts with every member of an ensemble over one model: each member adapter in turn (or, for MC dropout,
/// the one adapter several times with its LoRA dropout layers in training mode), then the row-wise mean softmax and
/// the uncertainty split. Calls are serialised with the classifier's own scorer (same model); the adapter "default"
/// is active again afterwards.
/// </summary>
internal sealed class EnsembleScorer : IBatchTextPredictor<EnsembleRowPrediction>
{
    private readonly PeftTextClassifier backend;
    private readonly ClassifierScorer scorer;
    private readonly Dropout[] loraDropout;

    /// <param name="scorer">The first member's scorer (encoder, batch size, lock).</param>
    /// <param name="members">Member adapter names; one name with <paramref name="dropoutPasses"/> &gt; 0 for MC dropout.</param>
    /// <param name="dropoutPasses">MC-dropout passes, 0 for an ensemble of adapters.</param>
    /// <param name="dropoutSeed">Where every scoring call restarts the adapter's random stream (MC dropout).</param>
    public EnsembleScorer(ClassifierScorer scorer, IReadOnlyList<string> members, int dropoutPasses, long dropoutSeed)
    {
        this.scorer = scorer;
        backend = scorer.Backend as PeftTextClassifier ?? throw new InvalidOperationException("an ensemble needs a classifier with a PEFT adapter");
        Members = members;
        DropoutPasses = dropoutPasses;
        DropoutSeed = dropoutSeed;
        loraDropout = backend.Model.NamedModules().Where(m => m.Module is Dropout && m.Name.Contains("lora_dropout", StringComparison.Ordinal)).Select(m => (Dropout)m.Module).ToArray();
        if (dropoutPasses > 0 && !loraDropout.Any(d => d.P > 0)) throw new InvalidOperationException("MC dropout needs LoRA dropout above 0, and this adapter has none");
    }

    public IReadOnlyList<string> Members { get; }

    public int DropoutPasses { get; }

    public long DropoutSeed { get; }

    public int BatchSize => scorer.BatchSize;

    /// <summary>Binary classifiers get probabilities σ(f₁ − f₀), as the single classifier's columns.</summary>
    public bool Binary { get; init; }

    /// <summary>Number of member predictions averaged per row.</summary>
    public int MemberCount => DropoutPasses > 0 ? DropoutPasses : Members.Count;

    /// <summary>Predictions for consecutive rows (one forward pass per member per <see cref="BatchSize"/> rows).</summary>
    public EnsembleRowPrediction[] Predict(IReadOnlyList<string> sentence1, IReadOnlyList<string>? sentence2)
    {
        var (ids, types) = LaplaceCalibratorPredictor.Encode(scorer.Encoder, sentence1, sentence2);
        var memberLogits = new List<float[][]>(MemberCount);
        lock (scorer.Gate)
        {
            try
            {
                if (DropoutPasses > 0) memberLogits.AddRange(DropoutLogits(ids, types));
                else
                {
                    foreach (var name in Members)
                    {
                        backend.Peft.SetAdapter(name);
                        memberLogits.Add(ClassifierInference.PredictLogits(backend, ids, types, backend.PaddingId, BatchSize));
                    }
                }
            }
            finally
            {
                backend.Peft.SetAdapter(Members[0]);
            }
        }
        var result = new EnsembleRowPrediction[ids.Length];
        for (int r = 0; r < result.Length; r++) result[r] = Combine(memberLogits, r, Binary);
        return result;
    }

    /// <summary>
    /// MC dropout: per batch, the adapter's stream restarts at <see cref="DropoutSeed"/> (so a batch's masks depend only
    /// on its rows) and <see cref="DropoutPasses"/> forward passes run with only the LoRA dropout layers training.
    /// </summary>
    private List<float[][]> DropoutLogits(int[][] ids, int[]?[]? types)
    {
        var passes = Enumerable.Range(0, DropoutPasses).Select(_ => new float[ids.Length][]).ToList();
        var stream = backend.RandomStreams[0];
        long saved = stream.Offset;
        backend.Module.Eval();
        try
        {
            foreach (var d in loraDropout) d.Train();
            for (int start = 0; start < ids.Length; start += BatchSize)
            {
                int end = Math.Min(ids.Length, start + BatchSize);
                var batch = TokenBatch.Collate(ids[start..end], types?[start..end], backend.PaddingId);
                stream.Offset = DropoutSeed;
                for (int s = 0; s < DropoutPasses; s++) ClassifierInference.Logits(backend, batch).CopyTo(passes[s], start);
            }
        }
        finally
        {
            backend.Module.Eval();
            stream.Offset = saved;
        }
        return passes;
    }

    /// <summary>Row <paramref name="row"/>'s mean softmax and uncertainty split over the members' logits.</summary>
    internal static EnsembleRowPrediction Combine(IReadOnlyList<float[][]> memberLogits, int row, bool binary)
    {
        int n = memberLogits.Count, classes = memberLogits[0][row].Length;
        var mean = new double[classes];
        double memberEntropy = 0;
        var p = new double[classes];
        foreach (var logits in memberLogits)
        {
            MemberProbabilities(logits[row], p, binary);
            for (int c = 0; c < classes; c++) mean[c] += p[c];
            memberEntropy += Entropy(p);
        }
        if (n > 1)
        {
            for (int c = 0; c < classes; c++) mean[c] /= n;
            memberEntropy /= n;
        }
        double entropy = Entropy(mean);
        // One member: its margin exactly (ln(p₁/p₀) would round-trip it through exp and log).
        double logOdds = !binary ? 0 : n == 1 ? (double)memberLogits[0][row][1] - memberLogits[0][row][0] : Math.Log(mean[1]) - Math.Log(mean[0]);
        return new EnsembleRowPrediction(mean, logOdds, entropy, entropy - memberEntropy);
    }

    /// <summary>
    /// A member's class probabilities in double with the arithmetic of the single classifier's columns, so one member
    /// reproduces them bit for bit: binary p₁ = 1/(1 + e^−m), m = f₁ − f₀ (p₀ = 1 − p₁); multiclass the max-subtracted
    /// softmax of <see cref="ClassifierInference.Softmax"/> before its float rounding.
    /// </summary>
    private static void MemberProbabilities(ReadOnlySpan<float> logits, double[] p, bool binary)
    {
        if (binary)
        {
            p[1] = 1 / (1 + Math.Exp(-((double)logits[1] - logits[0])));
            p[0] = 1 - p[1];
            return;
        }
        double max = double.NegativeInfinity;
        foreach (float l in logits) max = Math.Max(max, l);
        double sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += p[i] = Math.Exp(logits[i] - max);
        for (int i = 0; i < logits.Length; i++) p[i] /= sum;
    }

    private static double Entropy(double[] p)
    {
        double h = 0;
        foreach (double x in p)
        {
            if (x > 0) h -= x * Math.Log(x);
        }
        return h;
    }
}
