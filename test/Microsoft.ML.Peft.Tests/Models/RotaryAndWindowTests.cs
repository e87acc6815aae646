using Microsoft.ML.Peft.Models;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Tests.Models;

/// <summary>
/// rope_scaling "linear" and "dynamic" (llama3 is checked against PyTorch in <see cref="DecoderModelParityTests"/>) and
/// Mistral-style sliding-window attention, each against an independent formulation.
/// </summary>
[TestClass]
public sealed class RotaryAndWindowTests
{
    private static LlamaConfig Tiny(string modelType = "llama") => LlamaConfig.ForModelType(modelType) with
    {
        VocabSize = 50, HiddenSize = 32, IntermediateSize = 40, NumHiddenLayers = 2, NumAttentionHeads = 4, NumKeyValueHeads = 2,
        MaxPositionEmbeddings = 64, InitializerRange = 0.2, PadTokenId = null, SlidingWindow = null,
    };

    [TestMethod]
    public void LinearScaling_DividesEveryFrequencyByTheFactor()
    {
        var plain = RotaryTables.InverseFrequencies(8, 10000);
        var scaled = new RotaryEmbedding(8, 10000, new RopeScaling(RopeScalingType.Linear, 4), 64).InverseFrequencies;
        for (int i = 0; i < plain.Length; i++) Assert.AreEqual(plain[i] / 4f, scaled[i]);
    }

    [TestMethod]
    public void LinearScaling_InAModel_IsPositionInterpolation()
    {
        // With factor 2, position 2p rotates exactly as position p does without scaling, so the two models agree.
        var plain = (CausalLanguageModel)PretrainedModel.Create(Tiny(), ModelTask.CausalLM, seed: 3);
        var scaled = (CausalLanguageModel)PretrainedModel.Create(Tiny() with { RopeScaling = new RopeScaling(RopeScalingType.Linear, 2) }, ModelTask.CausalLM, seed: 3);
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var ids = Tensor.FromInt32([4, 8, 15, 16, 23], 1, 5);
        var a = plain.Forward(ids, positionIds: Tensor.FromInt32([0, 1, 2, 3, 4], 1, 5));
        var b = scaled.Forward(ids, positionIds: Tensor.FromInt32([0, 2, 4, 6, 8], 1, 5));
        Close.Assert(a, b, "linear factor 2 at doubled positions", atol: 1e-6, rtol: 1e-6);
        var c = scaled.Forward(ids, positionIds: Tensor.FromInt32([0, 1, 2, 3, 4], 1, 5));
        Assert.IsTrue(Close.MaxAbs(a.ToArray(), c.ToArray()) > 1e-3, "and the scaling does change the output at the same positions");
    }

    [TestMethod]
    public void DynamicNtkScaling_RescalesTheBaseForLongInputs_AndResetsForShortOnes()
    {
        const int dim = 8, original = 16;
        const double theta = 10000, factor = 2;
        var rotary = new RotaryEmbedding(dim, theta, new RopeScaling(RopeScalingType.Dynamic, factor), original);
        var plain = RotaryTables.InverseFrequencies(dim, theta);
        rotary.Tables(original);
        CollectionAssert.AreEqual(plain, rotary.InverseFrequencies, "within the original context nothing changes");

        rotary.Tables(40);
        // HF _compute_dynamic_ntk_parameters, written out: base' = θ·(factor·L/original − (factor − 1))^(d/(d−2)).
        double scaledBase = theta * Math.Pow(factor * 40 / original - (factor - 1), dim / (double)(dim - 2));
        for (int i = 0; i < dim / 2; i++)
            Assert.AreEqual(1 / Math.Pow(scaledBase, 2.0 * i / dim), rotary.InverseFrequencies[i], 1e-6 / Math.Pow(scaledBase, 2.0 * i / dim), $"inv_freq[{i}] at length 40");
        var (cos, _) = rotary.Tables(40);
        Assert.AreEqual(MathF.Cos(39 * rotary.InverseFrequencies[1]), cos.At(39, 1), 1e-6);

        float[] at40 = rotary.InverseFrequencies;
        rotary.Tables(30);
        CollectionAssert.AreEqual(at40, rotary.InverseFrequencies, "still beyond the original context: HF keeps the longer scaling");
        rotary.Tables(10);
        CollectionAssert.AreEqual(plain, rotary.InverseFrequencies, "back within the original context: reset");
    }

    [TestMethod]
    public void SlidingWindowAttention_MatchesAnExplicitBandMask_ForwardAndBackward()
    {
        const int b = 2, h = 2, t = 3, s = 7, d = 4, window = 3;
        var rng = new Generator(5);
        Tensor q, k, v, r;
        using (Autograd.NoGrad())
        {
            q = Tensor.Randn(rng, b, h, t, d).RequiresGrad_();
            k = Tensor.Randn(rng, b, h, s, d).RequiresGrad_();
            v = Tensor.Randn(rng, b, h, s, d).RequiresGrad_();
            r = Tensor.Randn(rng, b, h, t, d);
        }
        using var scope = TensorScope.Begin();
        var fused = q.ScaledDotProductAttention(k, v, causal: true, slidingWindow: window);
        fused.Mul(r).Sum().Backward();
        var (gq, gk, gv) = (q.Grad!.ToArray(), k.Grad!.ToArray(), v.Grad!.ToArray());
        q.ZeroGrad();
        k.ZeroGrad();
        v.ZeroGrad();

        // Query i sits at key position i + s − t and sees keys j with pos − window < j ≤ pos.
        var band = new float[t * s];
        for (int i = 0; i < t; i++)
        {
            int pos = i + s - t;
            for (int j = 0; j < s; j++) band[i * s + j] = j <= pos && j > pos - window ? 0f : float.NegativeInfinity;
        }
        var scores = q.MatMul(k.Transpose(-1, -2)).Mul(1f / MathF.Sqrt(d)).Add(Tensor.From(band, t, s));
        var explicitOut = scores.Softmax().MatMul(v);
        Close.Assert(explicitOut, fused, "sliding-window output", atol: 1e-6, rtol: 1e-5);
        explicitOut.Mul(r).Sum().Backward();
        Close.Assert(q.Grad!.ToArray(), gq, "dq", atol: 1e-6, rtol: 1e-5);
        Close.Assert(k.Grad!.ToArray(), gk, "dk", atol: 1e-6, rtol: 1e-5);
        Close.Assert(v.Grad!.ToArray(), gv, "dv", atol: 1e-6, rtol: 1e-5);
    }

    [TestMethod]
    public void MistralSlidingWindow_OneLayer_EqualsFullAttentionOverTheLastWindowTokens()
    {
        const int window = 3;
        var config = Tiny("mistral") with { NumHiddenLayers = 1 };
        var windowed = (CausalLanguageModel)PretrainedModel.Create(config with { SlidingWindow = window }, ModelTask.CausalLM, seed: 9);
        var full = (CausalLanguageModel)PretrainedModel.Create(config, ModelTask.CausalLM, seed: 9);
        int[] ids = [3, 1, 4, 1, 5, 9, 2, 6];
        using var scope = TensorScope.Begin();
        using var noGrad = Autograd.NoGrad();
        var logits = windowed.Forward(Tensor.FromInt32(ids, 1, ids.Length)).ToArray();
        for (int i = 0; i < ids.Length; i++)
        {
            int start = Math.Max(0, i - window + 1), n = i - start + 1;
            var positions = Enumerable.Range(start, n).ToArray();
            var tail = full.Forward(Tensor.FromInt32(ids[start..(i + 1)], 1, n), positionIds: Tensor.FromInt32(positions, 1, n), lastTokenOnly: true).ToArray();
            Close.Assert(tail, logits.AsSpan(i * 50, 50), $"position {i}", atol: 1e-5, rtol: 1e-5);
        }
        var unwindowed = full.Forward(Tensor.FromInt32(ids, 1, ids.Length)).ToArray();
        Assert.IsTrue(Close.MaxAbs(unwindowed.AsSpan(7 * 50, 50), logits.AsSpan(7 * 50, 50)) > 1e-3, "the window matters at the last position");
    }
}
