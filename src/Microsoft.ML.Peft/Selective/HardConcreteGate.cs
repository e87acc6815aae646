using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Selective;

/// <summary>
/// The hard-concrete gate of Louizos et al. (2018), as diff pruning uses it (Guo et al., 2021), with its relaxed L0
/// penalty folded into the backward pass.
/// </summary>
/// <remarks>
/// <para>Training (noise u ~ U(0, 1)): s = σ((log u − log(1 − u) + log α)/β); evaluation: s = σ(log α).
/// Gate z = min(1, max(0, s·(ζ − γ) + γ)).</para>
/// <para>The penalty λ·Σ σ(log α − β·log(−γ/ζ)) (the expected number of non-zero gates) is not a term the trainer
/// knows about, so its gradient λ·σ'(·) is added to ∂/∂log α in this op's backward: any trainer that minimises its
/// task loss through this gate minimises task loss + λ·L0 — once per forward through the gate, i.e. per
/// micro-batch. <see cref="ExpectedNonZero"/> gives the penalty's value for logging.</para>
/// </remarks>
internal static unsafe class HardConcreteGate
{
    /// <summary>The gates z for <paramref name="logAlpha"/> (noise <paramref name="noise"/> in training, null in evaluation).</summary>
    public static Tensor Apply(Tensor logAlpha, Tensor? noise, HardConcreteSettings s, float penalty)
    {
        const string op = "hard_concrete";
        var la = logAlpha.IsContiguous ? logAlpha : logAlpha.ContiguousCopy(op);
        int n = la.Count;
        var z = Tensor.Empty(la.ShapeArray());
        var ds = Tensor.Empty(la.ShapeArray());       // ∂z/∂log α, 0 where clamped
        float* pa = la.Ptr, pz = z.Ptr, pd = ds.Ptr, pu = noise is null ? null : noise.Ptr;
        float stretch = s.Zeta - s.Gamma;
        float invBeta = pu is null ? 1f : 1f / s.Beta;
        for (int i = 0; i < n; i++)
        {
            float logit = pu is null ? pa[i] : (MathF.Log(pu[i]) - MathF.Log(1f - pu[i]) + pa[i]) * invBeta;
            float sig = 1f / (1f + MathF.Exp(-logit));
            float raw = sig * stretch + s.Gamma;
            pz[i] = Math.Clamp(raw, 0f, 1f);
            pd[i] = raw > 0f && raw < 1f ? stretch * sig * (1f - sig) * invBeta : 0f;
        }
        if (Autograd.ShouldRecord(la))
        {
            float shift = s.Beta * MathF.Log(-s.Gamma / s.Zeta);
            var node = Autograd.Record(op, z, [la], (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                var grad = Tensor.Empty(la.ShapeArray());
                float* pg = gc.Ptr, pgrad = grad.Ptr, pds = ds.Ptr, pla = la.Ptr;
                for (int i = 0; i < n; i++)
                {
                    float q = 1f / (1f + MathF.Exp(-(pla[i] - shift)));
                    pgrad[i] = pg[i] * pds[i] + penalty * q * (1f - q);
                }
                node.AccumulateGrad(0, grad);
            });
            node.SaveForBackward(la, ds);
        }
        return Autograd.Checked(z, la);
    }

    /// <summary>Σ σ(log α − β·log(−γ/ζ)): the expected number of non-zero gates (the L0 penalty without λ).</summary>
    public static double ExpectedNonZero(Tensor logAlpha, HardConcreteSettings s)
    {
        double shift = s.Beta * Math.Log(-s.Gamma / s.Zeta), sum = 0;
        foreach (float a in logAlpha.ToArray()) sum += 1 / (1 + Math.Exp(-(a - shift)));
        return sum;
    }
}

/// <summary>Hard-concrete temperature β and stretch limits γ &lt; 0 &lt; 1 &lt; ζ.</summary>
internal readonly record struct HardConcreteSettings(float Beta, float Gamma, float Zeta);
