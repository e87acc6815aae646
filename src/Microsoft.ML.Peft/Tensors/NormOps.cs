namespace Microsoft.ML.Peft.Tensors;

/// <summary>LayerNorm and RMSNorm over the last dimension, fused forward and backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>
    /// torch.nn.functional.layer_norm over the last dimension: (x − mean)/√(var + eps)·weight + bias, with the biased
    /// variance. <paramref name="weight"/> and <paramref name="bias"/> are [d] or null.
    /// </summary>
    public Tensor LayerNorm(Tensor? weight, Tensor? bias, float eps = 1e-5f) => Normalize(weight, bias, eps, rms: false);

    /// <summary>
    /// RMSNorm as Hugging Face's LlamaRMSNorm: x·(mean(x²) + eps)^(−½)·weight over the last dimension; weight [d] or null.
    /// </summary>
    public Tensor RmsNorm(Tensor? weight, float eps = 1e-6f) => Normalize(weight, null, eps, rms: true);

    private Tensor Normalize(Tensor? weight, Tensor? bias, float eps, bool rms)
    {
        string op = rms ? "rms_norm" : "layer_norm";
        RequireFloat32(op);
        if (Rank < 1) throw new ArgumentException($"{op}: input {Describe} must have at least one dimension");
        int d = shape[^1];
        CheckNormParam(weight, d, op, "weight");
        CheckNormParam(bias, d, op, "bias");
        int rows = d == 0 ? 0 : count / d;
        var x = IsContiguous ? this : ContiguousCopy();
        var w = weight is null || weight.IsContiguous ? weight : weight.ContiguousCopy();
        var b = bias is null || bias.IsContiguous ? bias : bias.ContiguousCopy();
        var y = NewOutput(shape, op);
        var mean = rms ? null : NewOutput([rows], op + "_mean");
        var rstd = NewOutput([rows], op + "_rstd");
        NormKernels.Forward(x.Ptr, w is null ? null : w.Ptr, b is null ? null : b.Ptr, y.Ptr,
            mean is null ? null : mean.Ptr, rstd.Ptr, rows, d, eps, rms);
        if (Autograd.ShouldRecord(this, weight, bias))
        {
            Tensor[] inputs = (weight, bias) switch
            {
                (null, null) => [this],
                (_, null) => [this, weight],
                (null, _) => [this, bias],
                _ => [this, weight, bias],
            };
            int weightIndex = weight is null ? -1 : 1;
            int biasIndex = bias is null ? -1 : inputs.Length - 1;
            var node = Autograd.Record(op, y, inputs, (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                if (node.NeedsGrad(0))
                {
                    var dx = NewOutput(x.shape, op + "_backward");
                    NormKernels.BackwardInput(x.Ptr, w is null ? null : w.Ptr, gc.Ptr, mean is null ? null : mean.Ptr, rstd.Ptr, dx.Ptr, rows, d, rms);
                    node.AccumulateGrad(0, dx);
                }
                bool needW = weightIndex > 0 && node.NeedsGrad(weightIndex);
                bool needB = biasIndex > 0 && node.NeedsGrad(biasIndex);
                if (!needW && !needB) return;
                bool accW = false, accB = false;
                var dw = needW ? node.LeafGradTarget(weightIndex, out accW) : null;
                var db = needB ? node.LeafGradTarget(biasIndex, out accB) : null;
                var dwOut = needW ? dw ?? NewOutput([d], op + "_backward") : null;
                var dbOut = needB ? db ?? NewOutput([d], op + "_backward") : null;
                NormKernels.BackwardParams(x.Ptr, gc.Ptr, mean is null ? null : mean.Ptr, rstd.Ptr,
                    dwOut is null ? null : dwOut.Ptr, dw is not null && accW, dbOut is null ? null : dbOut.Ptr, db is not null && accB, rows, d, rms);
                if (needW && dw is null) node.AccumulateGrad(weightIndex, dwOut!);
                if (needB && db is null) node.AccumulateGrad(biasIndex, dbOut!);
            });
            if (w is null) node.SaveForBackward(x);
            else node.SaveForBackward(x, w);
        }
        return Autograd.Checked(y, this, weight, bias);
    }

    private static void CheckNormParam(Tensor? p, int d, string op, string what)
    {
        if (p is null) return;
        p.RequireFloat32(op);
        if (p.Rank != 1 || p.shape[0] != d)
            throw new ArgumentException($"{op}: {what} {p.Describe} must be [{d}] to match the normalized dimension");
    }
}
