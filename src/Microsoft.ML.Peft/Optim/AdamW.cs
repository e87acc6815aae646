using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Optim;

/// <summary>
/// torch.optim.AdamW (decoupled weight decay), with the same float32 operation order as PyTorch 1.13's
/// single-tensor implementation, per element:
/// p ← p·(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
/// p ← p − (lr/(1−β₁ᵗ))·m / (√v/√(1−β₂ᵗ) + ε), with t counted per parameter.
/// </summary>
public sealed class AdamW : Optimizer
{
    private readonly ConditionalWeakTable<Tensor, ParameterState> states = [];

    /// <summary>AdamW over plain parameters (PyTorch defaults).</summary>
    public AdamW(IEnumerable<Tensor> parameters, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : this([new ParameterGroup(parameters)], learningRate, beta1, beta2, eps, weightDecay)
    {
    }

    /// <summary>AdamW over parameter groups.</summary>
    public AdamW(IEnumerable<ParameterGroup> groups, double learningRate = 1e-3, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : base(groups, learningRate, weightDecay)
    {
        if (beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), "betas must be in [0, 1)");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
    }

    /// <summary>First-moment decay.</summary>
    public double Beta1 { get; }

    /// <summary>Second-moment decay.</summary>
    public double Beta2 { get; }

    /// <summary>Denominator epsilon.</summary>
    public double Eps { get; }

    /// <summary>Number of parameters that have optimizer state (trainable ones that have received a gradient).</summary>
    public int StateCount => states.Count();

    /// <summary>
    /// The live state of <paramref name="parameter"/> (moments and step count), or null before its first update:
    /// what a training checkpoint saves so that a resumed run continues bit-identically.
    /// </summary>
    public ParameterState? GetState(Tensor parameter) => states.TryGetValue(parameter, out var s) ? s : null;

    /// <summary>Replaces the state of <paramref name="parameter"/> with copies of the given moments (checkpoint resume).</summary>
    public void SetState(Tensor parameter, ReadOnlySpan<float> expAvg, ReadOnlySpan<float> expAvgSq, int step)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        if (expAvg.Length != parameter.Count || expAvgSq.Length != parameter.Count)
            throw new ArgumentException($"optimizer state for {parameter} has {expAvg.Length}/{expAvgSq.Length} values, expected {parameter.Count}");
        states.AddOrUpdate(parameter, new ParameterState(expAvg.ToArray(), expAvgSq.ToArray()) { Step = step });
    }

    private protected override unsafe void Update(Tensor parameter, Tensor grad, double learningRate, double weightDecay)
    {
        var s = states.GetValue(parameter, p => new ParameterState(NewState(p), NewState(p)));
        s.Step++;
        double biasCorrection1 = 1 - Math.Pow(Beta1, s.Step);
        double biasCorrection2 = 1 - Math.Pow(Beta2, s.Step);
        float decay = (float)(1 - learningRate * weightDecay);
        float b1 = (float)Beta1, oneMinusB1 = (float)(1 - Beta1), b2 = (float)Beta2, oneMinusB2 = (float)(1 - Beta2);
        float negStepSize = (float)-(learningRate / biasCorrection1);
        float bc2Sqrt = (float)Math.Sqrt(biasCorrection2);
        float eps = (float)Eps;
        var p = parameter.AsSpan<float>();
        var g = grad.IsContiguous ? grad.AsReadOnlySpan<float>() : grad.Contiguous().AsReadOnlySpan<float>();
        var m = s.ExpAvg.AsSpan();
        var v = s.ExpAvgSq.AsSpan();
        for (int i = 0; i < p.Length; i++)
        {
            float gi = g[i];
            float pi = p[i] * decay;
            float mi = m[i] * b1 + oneMinusB1 * gi;
            float vi = v[i] * b2 + oneMinusB2 * gi * gi;
            float denom = MathF.Sqrt(vi) / bc2Sqrt + eps;
            m[i] = mi;
            v[i] = vi;
            p[i] = pi + negStepSize * mi / denom;
        }
    }

    /// <summary>Adam moments of one parameter and its update count.</summary>
    public sealed class ParameterState(float[] expAvg, float[] expAvgSq)
    {
        /// <summary>First moment m (same element order as the parameter).</summary>
        public float[] ExpAvg { get; } = expAvg;

        /// <summary>Second moment v.</summary>
        public float[] ExpAvgSq { get; } = expAvgSq;

        /// <summary>Updates applied so far (t in the bias corrections).</summary>
        public int Step { get; internal set; }
    }
}
