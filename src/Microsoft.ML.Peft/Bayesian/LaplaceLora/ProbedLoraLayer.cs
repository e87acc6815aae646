using Microsoft.ML.Peft.Lora;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Bayesian;

/// <summary>
/// Stands in for a <see cref="LoraLinear"/> in its model slot while Laplace-LoRA needs per-matrix inputs and output
/// gradients. It computes the same eval-mode forward from the LoRA layer's own tensors, with the same ops in the same
/// order: y = base(x) + Σ_active ((x·Aᵀ)·s)·Bᵀ.
/// </summary>
/// <remarks>
/// <para>While recording, each adapter's branch and its add, y = running + s·(x·Aᵀ)·Bᵀ, is ONE autograd node (one probe
/// per adapter, where the first version had a zero leaf plus an add on each of A and B). Its backward receives
/// g = ∂L/∂y (the branch output's gradient is the layer output's) and derives everything K-FAC needs from tensors it
/// already has:</para>
/// <list type="bullet">
/// <item>B: input rows l = s·(x·Aᵀ) (kept from the forward), output gradient g;</item>
/// <item>A: input rows x, output gradient h = s·(g·B), one rows×out×r GEMM that the input gradient needs anyway;</item>
/// <item>∂L/∂x = h·A when x is part of the graph, and g itself to the base product.</item>
/// </list>
/// <para>These are exactly the tensors the two-probe version read (B applied to l, A to x, in LoraLinear's order of
/// operations), and the input gradient is computed by the same kernel calls as Linear's backward, so the factors agree
/// with it to float rounding (the order in which gradients arriving at x are summed may differ). No parameter gradient
/// is formed: the parameters are frozen while probing.</para>
/// <para>Why a stand-in and not an engine hook: LoraLinear multiplies by the A and B weights directly and the engine has
/// no "retain grad" for intermediate tensors; a custom node (<see cref="Autograd.Record"/>) needs no engine or LoRA
/// change. Dropout is not applied: the model must be in evaluation mode (checked by <see cref="LaplaceLora.Fit"/>).</para>
/// </remarks>
internal sealed class ProbedLoraLayer : LinearLayer
{
    private readonly LoraLinear lora;
    private readonly (ProbedMatrix A, ProbedMatrix B, float Scaling)[] adapters;

    public ProbedLoraLayer(string path, LoraLinear lora)
    {
        this.lora = lora;
        var list = new List<(ProbedMatrix, ProbedMatrix, float)>();
        foreach (var adapter in lora.ActiveAdapters)
        {
            if (lora.MergedAdapters.Contains(adapter))
                throw new InvalidOperationException($"Laplace-LoRA: adapter '{adapter}' of '{path}' is merged into the base weight; unmerge it first so its A and B can be probed");
            if (lora.UsesDora(adapter) || lora.UsesMixer(adapter))
                throw new InvalidOperationException($"Laplace-LoRA: adapter '{adapter}' of '{path}' is {(lora.UsesDora(adapter) ? "DoRA" : "MoSLoRA (has a mixer)")}; the posterior covers plain LoRA A and B only");
            list.Add((new ProbedMatrix($"{path}.lora_A.{adapter}", lora.LoraA(adapter)),
                new ProbedMatrix($"{path}.lora_B.{adapter}", lora.LoraB(adapter)), lora.Scaling(adapter)));
        }
        adapters = [.. list];
    }

    public LoraLinear Original => lora;

    /// <summary>The probed matrices: per active adapter, A then B.</summary>
    public IEnumerable<ProbedMatrix> Matrices => adapters.SelectMany(a => (ProbedMatrix[])[a.A, a.B]);

    public override int InFeatures => lora.InFeatures;

    public override int OutFeatures => lora.OutFeatures;

    public override Tensor Forward(Tensor input)
    {
        ArgumentNullException.ThrowIfNull(input);
        var result = lora.Base.Forward(input);
        foreach (var (a, b, scaling) in adapters)
        {
            bool probed = (a.Recording || b.Recording) && Autograd.IsGradEnabled;
            result = probed ? AddProbedBranch(input, result, a, b, scaling) : result.Add(input.Linear(a.Weight).Mul(scaling).Linear(b.Weight));
        }
        return result;
    }

    /// <summary>
    /// running + ((x·Aᵀ)·s)·Bᵀ as ONE recorded node that keeps A's and B's inputs and output gradients (see remarks); the
    /// add is part of the node, so a probed layer records two nodes (base product, probe) where LoraLinear records five.
    /// </summary>
    private static Tensor AddProbedBranch(Tensor x, Tensor running, ProbedMatrix a, ProbedMatrix b, float scaling)
    {
        Tensor low, sum;
        using (Autograd.NoGrad())
        {
            low = x.Linear(a.Weight).Mul(scaling);
            sum = running.Add(low.Linear(b.Weight));
        }
        var inputUse = a.Record(x);
        var lowUse = b.Record(low);
        Tensor weightA = a.Weight, weightB = b.Weight;
        var node = Autograd.Record("probed_lora", sum, [x, running, ProbeNodes.Anchor], (node, g) =>
        {
            // g = ∂L/∂(sum) is also ∂L/∂(running) and ∂L/∂(branch), as an add's backward would pass it on.
            if (node.NeedsGrad(1)) node.AccumulateGrad(1, g);
            if (lowUse is not null) lowUse.OutputGradient = g;
            bool inputNeedsGrad = node.NeedsGrad(0);
            if (inputUse is null && !inputNeedsGrad) return;
            var lowGradient = ProbeNodes.RowProduct(g, weightB).Mul(scaling);   // ∂L/∂(x·Aᵀ), as Mul's backward forms it
            if (inputUse is not null) inputUse.OutputGradient = lowGradient;
            if (inputNeedsGrad) node.AccumulateGrad(0, ProbeNodes.RowProduct(lowGradient, weightA));
        });
        node.SaveForBackward(x, low, weightA, weightB);
        return sum;
    }
}
