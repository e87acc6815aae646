using Microsoft.ML.Peft.Optim;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Training;

/// <summary>
/// AdamW whose per-parameter state (first and second moments, step count) can be read and restored, so a training
/// checkpoint resumes bit-identically. The update is <see cref="AdamW"/>'s, operation for operation (PyTorch 1.13's
/// single-tensor order); <see cref="AdamW"/> keeps its state private, hence this sibling (a test pins the two to
/// identical bits).
/// </summary>
internal sealed class ResumableAdamW : Optimizer
{
    private readonly Dictionary<Tensor, MomentState> states = new(ReferenceEqualityComparer.Instance);

    public ResumableAdamW(IEnumerable<ParameterGroup> groups, double learningRate, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0.01)
        : base(groups, learningRate, weightDecay)
    {
        if (beta1 is < 0 or >= 1 || beta2 is < 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(beta1), "betas must be in [0, 1)");
        Beta1 = beta1;
        Beta2 = beta2;
        Eps = eps;
    }

    public double Beta1 { get; }

    public double Beta2 { get; }

    public double Eps { get; }

    /// <summary>The live state of <paramref name="parameter"/>, or null before its first update.</summary>
    public MomentState? GetState(Tensor parameter) => states.GetValueOrDefault(parameter);

    /// <summary>Replaces the state of <paramref name="parameter"/> (copies the arrays).</summary>
    public void SetState(Tensor parameter, ReadOnlySpan<float> expAvg, ReadOnlySpan<float> expAvgSq, int step)
    {
        ArgumentNullException.ThrowIfNull(parameter);
        if (expAvg.Length != parameter.Count || expAvgSq.Length != parameter.Count)
            throw new ArgumentException($"optimizer state for {parameter} has {expAvg.Length}/{expAvgSq.Length} values, expected {parameter.Count}");
        states[parameter] = new MomentState(expAvg.ToArray(), expAvgSq.ToArray()) { Step = step };
    }

    private protected override void Update(Tensor parameter, Tensor grad, double learningRate, double weightDecay)
    {
        if (!states.TryGetValue(parameter, out var s)) states[parameter] = s = new MomentState(NewState(parameter), NewState(parameter));
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

    /// <summary>Adam moments of one parameter.</summary>
    internal sealed class MomentState(float[] expAvg, float[] expAvgSq)
    {
        public float[] ExpAvg { get; } = expAvg;

        public float[] ExpAvgSq { get; } = expAvgSq;

        public int Step { get; set; }
    }
}
