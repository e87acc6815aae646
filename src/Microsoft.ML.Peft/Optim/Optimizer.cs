using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Optim;

/// <summary>
/// Parameters sharing optimizer settings (e.g. "no weight decay for biases and norms", or LoRA+'s larger learning
/// rate for B matrices).
/// </summary>
public sealed class ParameterGroup
{
    /// <summary>A group with optional overrides.</summary>
    /// <param name="parameters">The tensors; frozen ones are kept but never updated and get no state.</param>
    /// <param name="weightDecay">Overrides the optimizer's weight decay for this group.</param>
    /// <param name="learningRateScale">Multiplies the optimizer's (scheduled) learning rate for this group.</param>
    public ParameterGroup(IEnumerable<Tensor> parameters, double? weightDecay = null, double learningRateScale = 1.0)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        Parameters = parameters.ToArray();
        WeightDecay = weightDecay;
        LearningRateScale = learningRateScale;
    }

    /// <summary>The tensors in the group.</summary>
    public IReadOnlyList<Tensor> Parameters { get; }

    /// <summary>Weight decay override, or null for the optimizer's default.</summary>
    public double? WeightDecay { get; }

    /// <summary>Factor on the learning rate.</summary>
    public double LearningRateScale { get; }
}

/// <summary>
/// Base of the optimizers: parameter groups, the (schedulable) learning rate and gradient clearing. Per-parameter
/// state is created lazily at the first step a trainable parameter has a gradient, outside any scope.
/// </summary>
public abstract class Optimizer
{
    private protected Optimizer(IEnumerable<ParameterGroup> groups, double learningRate, double weightDecay)
    {
        ArgumentNullException.ThrowIfNull(groups);
        Groups = groups.ToArray();
        LearningRate = learningRate;
        WeightDecay = weightDecay;
        var seen = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
        foreach (var p in Groups.SelectMany(g => g.Parameters))
        {
            if (!seen.Add(p)) throw new ArgumentException($"parameter {p} appears in more than one group");
        }
    }

    /// <summary>The parameter groups.</summary>
    public IReadOnlyList<ParameterGroup> Groups { get; }

    /// <summary>Current learning rate (a scheduler sets it before each step).</summary>
    public double LearningRate { get; set; }

    /// <summary>Default weight decay.</summary>
    public double WeightDecay { get; }

    /// <summary>Number of completed <see cref="Step"/> calls.</summary>
    public int StepCount { get; private set; }

    /// <summary>Every parameter of every group.</summary>
    public IEnumerable<Tensor> Parameters => Groups.SelectMany(g => g.Parameters);

    /// <summary>Updates every trainable parameter that has a gradient (others are skipped, as in PyTorch).</summary>
    public void Step()
    {
        using (Autograd.NoGrad())
        {
            foreach (var group in Groups)
            {
                double lr = LearningRate * group.LearningRateScale;
                double wd = group.WeightDecay ?? WeightDecay;
                foreach (var p in group.Parameters)
                {
                    if (!p.RequiresGrad || p.Grad is null) continue;
                    if (!p.IsContiguous) throw new NotSupportedException($"optimizer: parameter {p} must be contiguous");
                    Update(p, p.Grad, lr, wd);
                }
            }
        }
        StepCount++;
    }

    /// <summary>Clears the gradients of every parameter (see <see cref="Tensor.ZeroGrad"/>).</summary>
    public void ZeroGrad(bool setToNone = true)
    {
        foreach (var p in Parameters) p.ZeroGrad(setToNone);
    }

    /// <summary>
    /// Clears the gradients and hands their buffers back to the tensor pool instead of keeping them for the next
    /// backward: what a layer-wise step (<see cref="QLora.LayerwiseUpdates"/>) calls, so the next layer's gradients
    /// reuse the same memory and only one layer's gradients are resident at a time.
    /// </summary>
    public void ReleaseGradients()
    {
        foreach (var p in Parameters) p.ReleaseGrad();
    }

    /// <summary>Applies one update to <paramref name="parameter"/> in place.</summary>
    private protected abstract void Update(Tensor parameter, Tensor grad, double learningRate, double weightDecay);

    /// <summary>A float state buffer of the parameter's size, zeroed, owned by no scope.</summary>
    private protected static float[] NewState(Tensor parameter) => new float[parameter.Count];
}
