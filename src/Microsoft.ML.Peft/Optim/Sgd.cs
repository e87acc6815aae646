using System.Runtime.CompilerServices;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Optim;

/// <summary>
/// torch.optim.SGD: d = g + wd·p; with momentum μ, buf ← d at the first step, afterwards buf ← μ·buf + (1−dampening)·d,
/// and d = d + μ·buf (Nesterov) or d = buf; then p ← p − lr·d.
/// </summary>
public sealed class Sgd : Optimizer
{
    private readonly ConditionalWeakTable<Tensor, float[]> buffers = [];

    /// <summary>SGD over plain parameters.</summary>
    public Sgd(IEnumerable<Tensor> parameters, double learningRate, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : this([new ParameterGroup(parameters)], learningRate, momentum, dampening, weightDecay, nesterov)
    {
    }

    /// <summary>SGD over parameter groups.</summary>
    public Sgd(IEnumerable<ParameterGroup> groups, double learningRate, double momentum = 0, double dampening = 0, double weightDecay = 0, bool nesterov = false)
        : base(groups, learningRate, weightDecay)
    {
        if (nesterov && (momentum <= 0 || dampening != 0))
            throw new ArgumentException("Nesterov momentum requires a momentum and zero dampening");
        Momentum = momentum;
        Dampening = dampening;
        Nesterov = nesterov;
    }

    /// <summary>Momentum factor μ.</summary>
    public double Momentum { get; }

    /// <summary>Dampening of the momentum update.</summary>
    public double Dampening { get; }

    /// <summary>Whether Nesterov momentum is used.</summary>
    public bool Nesterov { get; }

    private protected override void Update(Tensor parameter, Tensor grad, double learningRate, double weightDecay)
    {
        var p = parameter.AsSpan<float>();
        var g = grad.IsContiguous ? grad.AsReadOnlySpan<float>() : grad.Contiguous().AsReadOnlySpan<float>();
        float wd = (float)weightDecay, mu = (float)Momentum, damp = (float)(1 - Dampening), negLr = (float)-learningRate;
        float[]? buf = null;
        bool first = false;
        if (Momentum != 0 && !buffers.TryGetValue(parameter, out buf))
        {
            buf = NewState(parameter);
            buffers.Add(parameter, buf);
            first = true;
        }
        for (int i = 0; i < p.Length; i++)
        {
            float d = weightDecay != 0 ? g[i] + wd * p[i] : g[i];
            if (buf is not null)
            {
                float b = first ? d : buf[i] * mu + damp * d;
                buf[i] = b;
                d = Nesterov ? d + mu * b : b;
            }
            p[i] = p[i] + negLr * d;
        }
    }
}
