using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lycoris;

/// <summary>
/// A linear layer with LoHa adapters (PEFT's <c>loha.Linear</c>; Hyeon-Woo et al. 2022, FedPara): the update is the
/// Hadamard product of two rank-r products, ΔW = (W1a·W1b) ⊙ (W2a·W2b) · alpha/r, with W1a, W2a [out, r] and
/// W1b, W2b [r, in], so its rank can reach r² with 2·r·(out + in) parameters. PEFT's names: "hada_w1_a",
/// "hada_w1_b", "hada_w2_a", "hada_w2_b" (ParameterDicts; saved as "…hada_w1_a" etc.).
/// </summary>
/// <remarks>
/// The Hadamard product has no low-rank shortcut, so the forward forms ΔW [out, in] (as PEFT does) and applies it as a
/// second linear map; the scaling is folded into W1a ([out, r]) so it costs out·r multiplies instead of out·in.
/// PEFT's init (init_weights = true): W1a, W1b, W2a Kaiming-uniform (a = √5), W2b = 0, so ΔW = 0 at init; false: all
/// four Kaiming-uniform.
/// </remarks>
public sealed class LoHaLinear : LycorisLinear
{
    private readonly ParameterDict w1A;
    private readonly ParameterDict w1B;
    private readonly ParameterDict w2A;
    private readonly ParameterDict w2B;

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet; add them with <see cref="UpdateLayer"/>).</summary>
    public LoHaLinear(LinearLayer baseLayer)
        : base(baseLayer)
    {
        w1A = AddParameterDict("hada_w1_a");
        w1B = AddParameterDict("hada_w1_b");
        w2A = AddParameterDict("hada_w2_a");
        w2B = AddParameterDict("hada_w2_b");
    }

    /// <summary>The four factors of an adapter: W1a [out, r], W1b [r, in], W2a [out, r], W2b [r, in].</summary>
    public (Tensor W1A, Tensor W1B, Tensor W2A, Tensor W2B) Factors(string adapterName)
    {
        _ = CheckedAdapter(adapterName);
        return (w1A[adapterName], w1B[adapterName], w2A[adapterName], w2B[adapterName]);
    }

    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> (PEFT's <c>update_layer</c>): rank r, scaling alpha/r, PEFT's
    /// rank_dropout (always rescaled by the kept mask's mean, as PEFT's LoHa) and module_dropout. Trainable, not active.
    /// </summary>
    public void UpdateLayer(string adapterName, int rank, double alpha, double rankDropout, double moduleDropout, bool initWeights, Generator generator)
    {
        CheckNewAdapter(adapterName, rank, rankDropout, moduleDropout, generator);
        // PEFT's creation order (w1_a, w1_b, w2_a, w2_b), each drawn in turn.
        w1A.Add(adapterName, NewFactor(OutFeatures, rank, zero: false, generator));
        w1B.Add(adapterName, NewFactor(rank, InFeatures, zero: false, generator));
        w2A.Add(adapterName, NewFactor(OutFeatures, rank, zero: false, generator));
        w2B.Add(adapterName, NewFactor(rank, InFeatures, zero: initWeights, generator));
        AddAdapterSettings(adapterName, rank, alpha, rankDropout, moduleDropout, rescaleRankDropout: true, generator);
    }

    /// <inheritdoc/>
    protected override Tensor ComputeDeltaWeight(string adapterName)
    {
        var first = w1A[adapterName].Mul(Scaling(adapterName)).MatMul(w1B[adapterName]);
        return first.Mul(w2A[adapterName].MatMul(w2B[adapterName]));
    }
}
