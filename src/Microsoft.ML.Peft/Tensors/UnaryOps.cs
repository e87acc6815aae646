namespace Microsoft.ML.Peft.Tensors;

/// <summary>Elementwise math functions with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>−x.</summary>
    public Tensor Neg()
    {
        var y = Unary("neg", new NegateMap());
        if (Autograd.ShouldRecord(this)) Autograd.Record("neg", y, [this], static (node, g) => node.AccumulateGrad(0, g.Neg()));
        return Autograd.Checked(y, this);
    }

    /// <summary>eˣ.</summary>
    public Tensor Exp()
    {
        var y = Unary("exp", new ExpMap());
        if (Autograd.ShouldRecord(this)) RecordFromOutput(this, y, static (y, g) => g.Mul(y));
        return Autograd.Checked(y, this);
    }

    /// <summary>Natural logarithm.</summary>
    public Tensor Log()
    {
        var y = Unary("log", new LogMap());
        if (Autograd.ShouldRecord(this)) RecordFromInput(this, y, static (x, g) => g.Div(x));
        return Autograd.Checked(y, this);
    }

    /// <summary>√x.</summary>
    public Tensor Sqrt()
    {
        var y = Unary("sqrt", new SqrtMap());
        if (Autograd.ShouldRecord(this)) RecordFromOutput(this, y, static (y, g) => g.Div(y).Mul(0.5f));
        return Autograd.Checked(y, this);
    }

    /// <summary>1/√x.</summary>
    public Tensor Rsqrt()
    {
        var y = Unary("rsqrt", new RsqrtMap());
        if (Autograd.ShouldRecord(this)) RecordFromOutput(this, y, static (y, g) => g.Mul(y.Mul(y).Mul(y)).Mul(-0.5f));
        return Autograd.Checked(y, this);
    }

    /// <summary>x^p for a scalar exponent.</summary>
    public Tensor Pow(float exponent)
    {
        var y = Unary("pow", new PowMap(exponent));
        if (Autograd.ShouldRecord(this))
        {
            var node = Autograd.Record("pow", y, [this], (node, g) =>
                node.AccumulateGrad(0, exponent == 0f ? g.Mul(0f) : g.Mul(node.Inputs[0].Pow(exponent - 1f)).Mul(exponent)));
            node.SaveForBackward(this);
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>|x| (gradient sign(x), 0 at 0).</summary>
    public Tensor Abs()
    {
        var y = Unary("abs", new AbsMap());
        if (Autograd.ShouldRecord(this)) RecordFused(this, y, saveOutput: false, new AbsBackwardMap());
        return Autograd.Checked(y, this);
    }

    /// <summary>Elementwise max(x, s) with a scalar (PyTorch clamp_min; the gradient reaches x where x ≥ s).</summary>
    public Tensor ClampMin(float s)
    {
        RequireFloat32("clamp_min");
        var src = IsContiguous ? this : ContiguousCopy();
        var y = NewOutput(shape, "clamp_min");
        MapKernels.Map(src, y, new MaxScalarMap(s));
        if (Autograd.ShouldRecord(this))
        {
            var node = Autograd.Record("clamp_min", y, [this], (node, g) =>
            {
                var mask = node.Inputs[0].Contiguous();
                var d = NewOutput(g.shape, "clamp_min_backward");
                MapKernels.Map(mask, g.Contiguous(), d, new ThresholdBackwardMap(s));
                node.AccumulateGrad(0, d);
            });
            node.SaveForBackward(this);
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>tanh(x).</summary>
    public Tensor Tanh()
    {
        var y = Unary("tanh", new TanhMap());
        if (Autograd.ShouldRecord(this)) RecordFused(this, y, saveOutput: true, new TanhBackwardMap());
        return Autograd.Checked(y, this);
    }

    /// <summary>σ(x) = 1/(1+e⁻ˣ).</summary>
    public Tensor Sigmoid()
    {
        var y = Unary("sigmoid", new SigmoidMap());
        if (Autograd.ShouldRecord(this)) RecordFused(this, y, saveOutput: true, new SigmoidBackwardMap());
        return Autograd.Checked(y, this);
    }

    /// <summary>Allocates the output and applies a span function to the (contiguous) input.</summary>
    private Tensor Unary<TMap>(string op, TMap f) where TMap : struct, IUnaryMap
    {
        RequireFloat32(op);
        var src = IsContiguous ? this : ContiguousCopy();
        var y = NewOutput(shape, op);
        MapKernels.Map(src, y, f);
        return y;
    }

    /// <summary>Records a backward that needs only the op's output: dx = f(y, g).</summary>
    private static void RecordFromOutput(Tensor x, Tensor y, Func<Tensor, Tensor, Tensor> f)
    {
        var node = Autograd.Record(y.Op, y, [x], (node, g) => node.AccumulateGrad(0, f(y, g)));
        node.SaveForBackward(y);
    }

    /// <summary>Records a backward that needs only the op's input: dx = f(x, g).</summary>
    private static void RecordFromInput(Tensor x, Tensor y, Func<Tensor, Tensor, Tensor> f)
    {
        var node = Autograd.Record(y.Op, y, [x], (node, g) => node.AccumulateGrad(0, f(node.Inputs[0], g)));
        node.SaveForBackward(x);
    }

    /// <summary>Records a fused elementwise backward d = f(saved, g) where saved is the op's input or output.</summary>
    private static void RecordFused<TMap>(Tensor x, Tensor y, bool saveOutput, TMap f) where TMap : struct, IBinaryMap
    {
        var saved = saveOutput ? y : x;
        var node = Autograd.Record(y.Op, y, [x], (node, g) =>
        {
            var s = saved.IsContiguous ? saved : saved.ContiguousCopy();
            var d = NewOutput(g.shape, node.Op + "_backward");
            MapKernels.Map(s, g.IsContiguous ? g : g.ContiguousCopy(), d, f);
            node.AccumulateGrad(0, d);
        });
        node.SaveForBackward(saved);
    }
}
