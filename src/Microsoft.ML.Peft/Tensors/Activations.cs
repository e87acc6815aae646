namespace Microsoft.ML.Peft.Tensors;

/// <summary>Which GELU formula to use (PyTorch's <c>approximate</c> argument).</summary>
public enum GeluApproximation
{
    /// <summary>Exact: x·Φ(x) with the normal CDF (BERT, "gelu").</summary>
    None,

    /// <summary>½x(1 + tanh(√(2/π)(x + 0.044715x³))) ("gelu_new", "gelu_pytorch_tanh", GPT-2).</summary>
    Tanh,
}

/// <summary>Activation functions with fused backward kernels.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>max(x, 0).</summary>
    public Tensor Relu()
    {
        var y = Unary("relu", new ReluMap());
        if (Autograd.ShouldRecord(this)) RecordFused(this, y, saveOutput: false, new ReluBackwardMap());
        return Autograd.Checked(y, this);
    }

    /// <summary>GELU in the erf form (default) or the tanh approximation.</summary>
    public Tensor Gelu(GeluApproximation approximation = GeluApproximation.None)
    {
        Tensor y;
        if (approximation == GeluApproximation.Tanh)
        {
            y = Unary("gelu_tanh", new GeluTanhMap());
            if (Autograd.ShouldRecord(this)) RecordFused(this, y, saveOutput: false, new GeluTanhBackwardMap());
        }
        else
        {
            y = Unary("gelu", new GeluMap());
            if (Autograd.ShouldRecord(this)) RecordFused(this, y, saveOutput: false, new GeluBackwardMap());
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>SiLU (swish): x·σ(x).</summary>
    public Tensor Silu()
    {
        var y = Unary("silu", new SiluMap());
        if (Autograd.ShouldRecord(this)) RecordFused(this, y, saveOutput: false, new SiluBackwardMap());
        return Autograd.Checked(y, this);
    }
}
