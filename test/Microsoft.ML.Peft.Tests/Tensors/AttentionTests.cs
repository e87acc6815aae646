using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Tensors;

[TestClass]
public sealed class AttentionTests
{
    /// <summary>Unfused reference built from engine ops: repeat kv heads, scores, masks, softmax, weighted sum.</summary>
    private static Tensor Naive(Tensor q, Tensor k, Tensor v, Tensor? additiveMask, bool causal)
    {
        int b = q.Size(0), h = q.Size(1), t = q.Size(2), d = q.Size(3), hkv = k.Size(1), s = k.Size(2);
        int rep = h / hkv;
        var kr = k.Unsqueeze(2).Expand(b, hkv, rep, s, d).Reshape(b, h, s, d);
        var vr = v.Unsqueeze(2).Expand(b, hkv, rep, s, v.Size(3)).Reshape(b, h, s, v.Size(3));
        var scores = q.MatMul(kr.Transpose(-1, -2)).Mul(1f / MathF.Sqrt(d));
        if (additiveMask is not null) scores = scores.Add(additiveMask.Reshape(b, 1, 1, s));
        if (causal)
        {
            var hidden = new int[t * s];
            for (int i = 0; i < t; i++)
                for (int j = 0; j < s; j++) hidden[i * s + j] = j > i + s - t ? 1 : 0;
            scores = scores.MaskedFill(Tensor.FromInt32(hidden, t, s), float.NegativeInfinity);
        }
        return scores.Softmax().MatMul(vr);
    }

    private static void Compare(int b, int h, int hkv, int t, int s, int d, bool mask, bool causal, ulong seed, bool transposedInputs = false)
    {
        var g = new Generator(seed);
        Tensor q, k, v;
        if (transposedInputs)
        {
            q = Tensor.Randn(g, b, t, h, d).Transpose(1, 2).Detach().RequiresGrad_();
            k = Tensor.Randn(g, b, s, hkv, d).Transpose(1, 2).Detach().RequiresGrad_();
            v = Tensor.Randn(g, b, s, hkv, d).Transpose(1, 2).Detach().RequiresGrad_();
        }
        else
        {
            q = Tensor.Randn(g, b, h, t, d).RequiresGrad_();
            k = Tensor.Randn(g, b, hkv, s, d).RequiresGrad_();
            v = Tensor.Randn(g, b, hkv, s, d).RequiresGrad_();
        }
        Tensor? additive = null, keep = null;
        if (mask)
        {
            // Batch 0 sees every key; batch i > 0 has its last i keys padded.
            var keepValues = new int[b * s];
            var addValues = new float[b * s];
            for (int bi = 0; bi < b; bi++)
                for (int j = 0; j < s; j++)
                {
                    keepValues[bi * s + j] = j < s - bi ? 1 : 0;
                    addValues[bi * s + j] = keepValues[bi * s + j] == 1 ? 0f : float.NegativeInfinity;
                }
            keep = Tensor.FromInt32(keepValues, b, s);
            additive = Tensor.From(addValues, b, s);
        }
        var r = Tensor.Randn(g, b, h, t, d);

        var fused = q.ScaledDotProductAttention(k, v, keep, causal);
        fused.Backward(r);
        var (gq, gk, gv) = (q.Grad!.ToArray(), k.Grad!.ToArray(), v.Grad!.ToArray());
        q.ZeroGrad();
        k.ZeroGrad();
        v.ZeroGrad();
        var reference = Naive(q, k, v, additive, causal);
        reference.Backward(r);
        string what = $"b={b} h={h} hkv={hkv} t={t} s={s} mask={mask} causal={causal}";
        GradCheck.AssertClose(reference.ToArray(), fused.ToArray(), 2e-5, what + " output");
        GradCheck.AssertClose(q.Grad!.ToArray(), gq, 5e-5, what + " dq");
        GradCheck.AssertClose(k.Grad!.ToArray(), gk, 5e-5, what + " dk");
        GradCheck.AssertClose(v.Grad!.ToArray(), gv, 5e-5, what + " dv");
        // The additive form of the same mask gives the same output.
        if (mask) GradCheck.AssertClose(fused.ToArray(), q.ScaledDotProductAttention(k, v, additive, causal).ToArray(), 0, what + " additive");
    }

    [TestMethod]
    public void Fused_MatchesNaive_PlainMaskedCausalGrouped()
    {
        Compare(1, 2, 2, 5, 5, 4, mask: false, causal: false, seed: 1);
        Compare(2, 2, 2, 6, 6, 4, mask: true, causal: false, seed: 2);
        Compare(2, 4, 2, 7, 7, 8, mask: false, causal: true, seed: 3);
        Compare(3, 4, 1, 6, 6, 4, mask: true, causal: true, seed: 4);
        Compare(2, 2, 2, 3, 7, 4, mask: true, causal: true, seed: 5);     // fewer queries than keys (bottom-right causal)
        Compare(2, 4, 2, 5, 5, 4, mask: true, causal: true, seed: 6, transposedInputs: true);
    }

    [TestMethod]
    public void Fused_MatchesNaive_AcrossSeveralBlocks()
    {
        // 150 rows span three 64-row query blocks and three 64-key blocks, with causal tiles skipped.
        Compare(1, 2, 1, 150, 150, 8, mask: true, causal: true, seed: 7);
        Compare(2, 1, 1, 70, 130, 4, mask: true, causal: false, seed: 8);
    }

    [TestMethod]
    public void Dropout_MatchesNaiveWithTheSameMask_AndIsReproducible()
    {
        int b = 2, h = 2, hkv = 1, t = 70, s = 70, d = 4;
        const float p = 0.3f;
        var g = new Generator(10);
        var q = Tensor.Randn(g, b, h, t, d).RequiresGrad_();
        var k = Tensor.Randn(g, b, hkv, s, d).RequiresGrad_();
        var v = Tensor.Randn(g, b, hkv, s, d).RequiresGrad_();
        var r = Tensor.Randn(g, b, h, t, d);
        var keep = Tensor.FromInt32(Enumerable.Range(0, b * s).Select(i => i % s < s - 3 * (i / s) ? 1 : 0).ToArray(), b, s);

        var fused = q.ScaledDotProductAttention(k, v, keep, causal: true, dropout: p, generator: new Generator(99));
        fused.Backward(r);
        var (gq, gk, gv) = (q.Grad!.ToArray(), k.Grad!.ToArray(), v.Grad!.ToArray());
        q.ZeroGrad();
        k.ZeroGrad();
        v.ZeroGrad();

        // Element (b, h, i, j) keeps when draw #((b·H + h)·T + i)·S + j of the generator is ≥ p.
        var maskGen = new Generator(99);
        var z = new float[b * h * t * s];
        for (int i = 0; i < z.Length; i++) z[i] = maskGen.UniformAt(i) >= p ? 1f / (1f - p) : 0f;
        var kr = k.Unsqueeze(2).Expand(b, hkv, h / hkv, s, d).Reshape(b, h, s, d);
        var vr = v.Unsqueeze(2).Expand(b, hkv, h / hkv, s, d).Reshape(b, h, s, d);
        var hidden = new int[t * s];
        for (int i = 0; i < t; i++)
            for (int j = 0; j < s; j++) hidden[i * s + j] = j > i ? 1 : 0;
        var scores = q.MatMul(kr.Transpose(-1, -2)).Mul(0.5f)
            .MaskedFill(Tensor.FromInt32(hidden, t, s), float.NegativeInfinity)
            .MaskedFill(keep.Reshape(b, 1, 1, s).To(DType.Float32).Neg().Add(1f).To(DType.Int32), float.NegativeInfinity);
        var reference = scores.Softmax().Mul(Tensor.From(z, b, h, t, s)).MatMul(vr);
        reference.Backward(r);
        GradCheck.AssertClose(reference.ToArray(), fused.ToArray(), 2e-5, "output");
        GradCheck.AssertClose(q.Grad!.ToArray(), gq, 5e-5, "dq");
        GradCheck.AssertClose(k.Grad!.ToArray(), gk, 5e-5, "dk");
        GradCheck.AssertClose(v.Grad!.ToArray(), gv, 5e-5, "dv");
        CollectionAssert.AreEqual(fused.ToArray(), q.ScaledDotProductAttention(k, v, keep, causal: true, dropout: p, generator: new Generator(99)).ToArray());
    }

    [TestMethod]
    public void Fused_Gradients_MatchFiniteDifferences()
    {
        var mask = Tensor.FromInt32([1, 1, 1, 0, 1, 1, 1, 1], 2, 4);
        GradCheck.Check(t => t[0].ScaledDotProductAttention(t[1], t[2], mask, causal: true),
            [GradCheck.Param(71, 2, 2, 4, 3), GradCheck.Param(72, 2, 1, 4, 3), GradCheck.Param(73, 2, 1, 4, 3)]);
    }

    [TestMethod]
    public void FullyMaskedRow_OutputsZerosAndZeroGradients()
    {
        var g = new Generator(9);
        var q = Tensor.Randn(g, 1, 1, 2, 4).RequiresGrad_();
        var k = Tensor.Randn(g, 1, 1, 3, 4).RequiresGrad_();
        var v = Tensor.Randn(g, 1, 1, 3, 4).RequiresGrad_();
        var y = q.ScaledDotProductAttention(k, v, Tensor.FromInt32([0, 0, 0], 1, 3));
        CollectionAssert.AreEqual(new float[8], y.ToArray());
        y.Sum().Backward();
        CollectionAssert.AreEqual(new float[8], q.Grad!.ToArray());
    }

    [TestMethod]
    public void BadShapes_NameOperands()
    {
        var q = Tensor.Zeros(1, 3, 2, 4);
        var k = Tensor.Zeros(1, 2, 2, 4);
        var ex = Assert.ThrowsExactly<ArgumentException>(() => q.ScaledDotProductAttention(k, k));
        StringAssert.Contains(ex.Message, "multiple");
        StringAssert.Contains(ex.Message, "[1, 3, 2, 4]");
        var mex = Assert.ThrowsExactly<ArgumentException>(() => q.ScaledDotProductAttention(Tensor.Zeros(1, 3, 2, 4), Tensor.Zeros(1, 3, 2, 4), Tensor.Zeros(1, 5)));
        StringAssert.Contains(mex.Message, "mask");
    }
}
