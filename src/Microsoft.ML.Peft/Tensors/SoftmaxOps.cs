namespace Microsoft.ML.Peft.Tensors;

/// <summary>Softmax and log-softmax along the last dimension, fused forward and backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>exp(x − max)/Σ exp(x − max) along the last dimension.</summary>
    public Tensor Softmax() => SoftmaxCore(log: false);

    /// <summary>x − max − log Σ exp(x − max) along the last dimension.</summary>
    public Tensor LogSoftmax() => SoftmaxCore(log: true);

    private Tensor SoftmaxCore(bool log)
    {
        string op = log ? "log_softmax" : "softmax";
        RequireFloat32(op);
        if (Rank < 1) throw new ArgumentException($"{op}: input {Describe} must have at least one dimension");
        int n = shape[^1];
        int rows = n == 0 ? 0 : count / n;
        var x = IsContiguous ? this : ContiguousCopy();
        var y = NewOutput(shape, op);
        SoftmaxKernels.Forward(x.Ptr, y.Ptr, rows, n, log);
        if (Autograd.ShouldRecord(this))
        {
            var node = Autograd.Record(op, y, [this], (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                var dx = NewOutput(y.shape, op + "_backward");
                SoftmaxKernels.Backward(y.Ptr, gc.Ptr, dx.Ptr, rows, n, log);
                node.AccumulateGrad(0, dx);
            });
            node.SaveForBackward(y);
        }
        return Autograd.Checked(y, this);
    }
}
