using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;
using Microsoft.ML.Peft.Tuners;

namespace Microsoft.ML.Peft.Lycoris;

/// <summary>
/// A linear layer with LoKr adapters (PEFT's <c>lokr.Linear</c>; Yeh et al. 2024): ΔW = (W1 ⊗ W2) · alpha/r, a
/// Kronecker product of W1 [out_l, in_m] and W2 [out_k, in_n] with out = out_l·out_k and in = in_m·in_n from
/// <see cref="LoKrFactorization.Factorize"/>. Each factor is a full matrix ("lokr_w1", "lokr_w2") or, when r is small
/// against its dimensions, a rank-r product ("lokr_w1_a"·"lokr_w1_b", "lokr_w2_a"·"lokr_w2_b"); W1 is only
/// decomposed with decompose_both. PEFT's init: W1 (or W1a) = 0, the rest Kaiming-uniform, so ΔW = 0 at init.
/// </summary>
/// <remarks>
/// The forward never forms ΔW: with x [N, in] viewed as X [N, in_m, in_n], (W1 ⊗ W2)·x is W1·X·W2ᵀ per row, computed as
/// two small batched products (N·in·out_k + N·out_k·in_m·out_l multiply-adds instead of N·out·in), the scaling folded
/// into W1. Merging forms the Kronecker product once.
/// </remarks>
public sealed class LoKrLinear : LycorisLinear
{
    private readonly ParameterDict w1;
    private readonly ParameterDict w1A;
    private readonly ParameterDict w1B;
    private readonly ParameterDict w2;
    private readonly ParameterDict w2A;
    private readonly ParameterDict w2B;
    private readonly Dictionary<string, LoKrShape> shapes = new(StringComparer.Ordinal);

    /// <summary>Wraps <paramref name="baseLayer"/> (no adapters yet; add them with <see cref="UpdateLayer"/>).</summary>
    public LoKrLinear(LinearLayer baseLayer)
        : base(baseLayer)
    {
        w1 = AddParameterDict("lokr_w1");
        w1A = AddParameterDict("lokr_w1_a");
        w1B = AddParameterDict("lokr_w1_b");
        w2 = AddParameterDict("lokr_w2");
        w2A = AddParameterDict("lokr_w2_a");
        w2B = AddParameterDict("lokr_w2_b");
    }

    /// <summary>The Kronecker shape of an adapter: out = OutL·OutK, in = InM·InN, and which factors are full matrices.</summary>
    public LoKrShape Shape(string adapterName) =>
        shapes.TryGetValue(adapterName, out var s) ? s : throw UnknownAdapter(adapterName);

    /// <summary>
    /// Adds adapter <paramref name="adapterName"/> (PEFT's <c>update_layer</c>): the dimensions factorised with
    /// <paramref name="decomposeFactor"/>, W1 full unless <paramref name="decomposeBoth"/> and r &lt; max(out_l, in_m)/2,
    /// W2 full unless r &lt; max(out_k, in_n)/2. <paramref name="initWeights"/> false: every factor Kaiming-uniform.
    /// rank_dropout is rescaled by the kept mask's mean only with <paramref name="rankDropoutScale"/>. Trainable, not active.
    /// </summary>
    public void UpdateLayer(string adapterName, int rank, double alpha, double rankDropout, double moduleDropout, bool initWeights,
        bool decomposeBoth, int decomposeFactor, bool rankDropoutScale, Generator generator)
    {
        CheckNewAdapter(adapterName, rank, rankDropout, moduleDropout, generator);
        var (inM, inN) = LoKrFactorization.Factorize(InFeatures, decomposeFactor);
        var (outL, outK) = LoKrFactorization.Factorize(OutFeatures, decomposeFactor);
        // PEFT compares r with max(...) / 2 in floating point: 2·r < max is the same test in integers.
        bool useW1 = !(decomposeBoth && 2 * rank < Math.Max(outL, inM));
        bool useW2 = !(2 * rank < Math.Max(outK, inN));
        // PEFT's creation and init order: W1 (or W1a, W1b), then W2 (or W2a, W2b).
        if (useW1)
        {
            w1.Add(adapterName, NewFactor(outL, inM, zero: initWeights, generator));
        }
        else
        {
            w1A.Add(adapterName, NewFactor(outL, rank, zero: initWeights, generator));
            w1B.Add(adapterName, NewFactor(rank, inM, zero: false, generator));
        }
        if (useW2)
        {
            w2.Add(adapterName, NewFactor(outK, inN, zero: false, generator));
        }
        else
        {
            w2A.Add(adapterName, NewFactor(outK, rank, zero: false, generator));
            w2B.Add(adapterName, NewFactor(rank, inN, zero: false, generator));
        }
        shapes[adapterName] = new LoKrShape(outL, outK, inM, inN, useW1, useW2);
        AddAdapterSettings(adapterName, rank, alpha, rankDropout, moduleDropout, rankDropoutScale, generator);
    }

    /// <summary>W1 [out_l, in_m] (the full factor or W1a·W1b), recorded.</summary>
    private Tensor W1(string adapterName) => Shape(adapterName).FullW1 ? w1[adapterName] : w1A[adapterName].MatMul(w1B[adapterName]);

    /// <summary>W2 [out_k, in_n], recorded.</summary>
    private Tensor W2(string adapterName) => Shape(adapterName).FullW2 ? w2[adapterName] : w2A[adapterName].MatMul(w2B[adapterName]);

    /// <inheritdoc/>
    protected override Tensor ComputeDeltaWeight(string adapterName)
    {
        var s = Shape(adapterName);
        var first = W1(adapterName).Mul(Scaling(adapterName)).Reshape(s.OutL, 1, s.InM, 1);
        var second = W2(adapterName).Reshape(1, s.OutK, 1, s.InN);
        // (W1 ⊗ W2)[(i, k), (m, n)] = W1[i, m]·W2[k, n]: a broadcast product laid out [out_l, out_k, in_m, in_n].
        return first.Mul(second).Reshape(OutFeatures, InFeatures);
    }

    /// <inheritdoc/>
    protected override Tensor DeltaActivations(string adapterName, Tensor x)
    {
        var s = Shape(adapterName);
        var shape = x.ShapeArray();
        int rows = 1;
        for (int d = 0; d < shape.Length - 1; d++) rows *= shape[d];
        var scaledW1 = W1(adapterName).Mul(Scaling(adapterName));
        // X [N, in_m, in_n] · W2ᵀ → [N, in_m, out_k]; transposed to [N, out_k, in_m] · W1ᵀ → [N, out_k, out_l].
        var y = x.Reshape(rows, s.InM, s.InN).Linear(W2(adapterName)).Transpose(1, 2).Linear(scaledW1);
        shape[^1] = OutFeatures;
        return y.Transpose(1, 2).Reshape(shape);
    }
}

/// <summary>The Kronecker layout of a LoKr adapter: ΔW [OutL·OutK, InM·InN] = W1 [OutL, InM] ⊗ W2 [OutK, InN].</summary>
/// <param name="OutL">Rows of W1.</param>
/// <param name="OutK">Rows of W2.</param>
/// <param name="InM">Columns of W1.</param>
/// <param name="InN">Columns of W2.</param>
/// <param name="FullW1">W1 is one matrix ("lokr_w1") rather than W1a·W1b.</param>
/// <param name="FullW2">W2 is one matrix ("lokr_w2") rather than W2a·W2b.</param>
public sealed record LoKrShape(int OutL, int OutK, int InM, int InN, bool FullW1, bool FullW2);
