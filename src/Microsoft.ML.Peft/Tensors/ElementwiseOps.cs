namespace Microsoft.ML.Peft.Tensors;

/// <summary>Broadcasting binary arithmetic (NumPy rules) and scalar arithmetic, with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>this + other, broadcast.</summary>
    public Tensor Add(Tensor other) => AddSub(other, subtract: false);

    /// <summary>this − other, broadcast.</summary>
    public Tensor Sub(Tensor other) => AddSub(other, subtract: true);

    /// <summary>this · other (elementwise), broadcast.</summary>
    public Tensor Mul(Tensor other)
    {
        var y = Binary<MultiplyOperator>(this, other, "mul");
        if (Autograd.ShouldRecord(this, other)) RecordMul(this, other, y);
        return Autograd.Checked(y, this, other);
    }

    /// <summary>this / other (elementwise), broadcast.</summary>
    public Tensor Div(Tensor other)
    {
        var y = Binary<DivideOperator>(this, other, "div");
        if (Autograd.ShouldRecord(this, other)) RecordDiv(this, other, y);
        return Autograd.Checked(y, this, other);
    }

    /// <summary>this + s.</summary>
    public Tensor Add(float s) => ScalarOp<AddOperator>(s, "add_scalar", 1f);

    /// <summary>this − s.</summary>
    public Tensor Sub(float s) => ScalarOp<AddOperator>(-s, "sub_scalar", 1f);

    /// <summary>this · s.</summary>
    public Tensor Mul(float s) => ScalarOp<MultiplyOperator>(s, "mul_scalar", s);

    /// <summary>this / s (computed as a true division, like PyTorch).</summary>
    public Tensor Div(float s) => ScalarOp<DivideOperator>(s, "div_scalar", 1f / s);

    /// <summary>Elementwise sum.</summary>
    public static Tensor operator +(Tensor a, Tensor b) => a.Add(b);

    /// <summary>Elementwise difference.</summary>
    public static Tensor operator -(Tensor a, Tensor b) => a.Sub(b);

    /// <summary>Elementwise product.</summary>
    public static Tensor operator *(Tensor a, Tensor b) => a.Mul(b);

    /// <summary>Elementwise quotient.</summary>
    public static Tensor operator /(Tensor a, Tensor b) => a.Div(b);

    /// <summary>Adds a scalar.</summary>
    public static Tensor operator +(Tensor a, float s) => a.Add(s);

    /// <summary>Adds a scalar.</summary>
    public static Tensor operator +(float s, Tensor a) => a.Add(s);

    /// <summary>Subtracts a scalar.</summary>
    public static Tensor operator -(Tensor a, float s) => a.Sub(s);

    /// <summary>s − a.</summary>
    public static Tensor operator -(float s, Tensor a) => a.Neg().Add(s);

    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(Tensor a, float s) => a.Mul(s);

    /// <summary>Multiplies by a scalar.</summary>
    public static Tensor operator *(float s, Tensor a) => a.Mul(s);

    /// <summary>Divides by a scalar.</summary>
    public static Tensor operator /(Tensor a, float s) => a.Div(s);

    /// <summary>Negation.</summary>
    public static Tensor operator -(Tensor a) => a.Neg();

    private Tensor AddSub(Tensor other, bool subtract)
    {
        var y = subtract ? Binary<SubtractOperator>(this, other, "sub") : Binary<AddOperator>(this, other, "add");
        if (Autograd.ShouldRecord(this, other)) RecordAddSub(this, other, y, subtract);
        return Autograd.Checked(y, this, other);
    }

    private static void RecordAddSub(Tensor a, Tensor b, Tensor y, bool subtract)
    {
        int[] aShape = a.shape, bShape = b.shape;
        Autograd.Record(y.Op, y, [a, b], (node, g) =>
        {
            if (node.NeedsGrad(0)) node.AccumulateGrad(0, g.SumToShape(aShape));
            if (node.NeedsGrad(1))
            {
                var gb = g.SumToShape(bShape);
                node.AccumulateGrad(1, subtract ? gb.Neg() : gb);
            }
        });
    }

    private static void RecordMul(Tensor a, Tensor b, Tensor y)
    {
        var node = Autograd.Record("mul", y, [a, b], static (node, g) =>
        {
            Tensor x0 = node.Inputs[0], x1 = node.Inputs[1];
            if (node.NeedsGrad(0)) node.AccumulateGrad(0, g.Mul(x1).SumToShape(x0.shape));
            if (node.NeedsGrad(1)) node.AccumulateGrad(1, g.Mul(x0).SumToShape(x1.shape));
        });
        node.SaveForBackward(a, b);
    }

    private static void RecordDiv(Tensor a, Tensor b, Tensor y)
    {
        var node = Autograd.Record("div", y, [a, b], static (node, g) =>
        {
            Tensor x0 = node.Inputs[0], x1 = node.Inputs[1];
            var g0 = g.Div(x1);
            if (node.NeedsGrad(0)) node.AccumulateGrad(0, g0.SumToShape(x0.shape));
            if (node.NeedsGrad(1)) node.AccumulateGrad(1, g0.Mul(x0).Div(x1).Neg().SumToShape(x1.shape)); // −g·a/b²
        });
        node.SaveForBackward(a, b);
    }

    private Tensor ScalarOp<TOp>(float s, string op, float gradScale) where TOp : struct, IBinaryOperator
    {
        RequireFloat32(op);
        var src = IsContiguous ? this : ContiguousCopy();
        var y = NewOutput(shape, op);
        MapKernels.Map(src, y, new ScalarRightMap<TOp>(s));
        if (Autograd.ShouldRecord(this)) RecordScale(this, y, gradScale);
        return Autograd.Checked(y, this);
    }

    /// <summary>Backward of ops whose derivative is a constant factor (x + s, x·s, x/s).</summary>
    private static void RecordScale(Tensor x, Tensor y, float factor) =>
        Autograd.Record(y.Op, y, [x], (node, g) => node.AccumulateGrad(0, factor == 1f ? g : g.Mul(factor)));

    /// <summary>Allocates the broadcast output and runs the kernel; validates dtypes and shapes naming the op.</summary>
    private static Tensor Binary<TOp>(Tensor a, Tensor b, string op) where TOp : struct, IBinaryOperator
    {
        a.RequireFloat32(op);
        b.RequireFloat32(op);
        var outShape = ShapeText.SameShape(a.shape, b.shape) ? a.shape : ShapeText.Broadcast(a.shape, b.shape, op);
        var y = NewOutput(outShape, op);
        BinaryKernels.Apply<TOp>(a, b, y, op);
        return y;
    }

    /// <summary>this += g without autograd or version bump (gradient buffers only).</summary>
    internal void AddInPlaceNoVersion(Tensor g) => BinaryKernels.Apply<AddOperator>(this, g, this, "grad_accumulate");

    /// <summary>this + g without recording (backward-pass sums).</summary>
    internal Tensor AddNoGrad(Tensor g)
    {
        var y = NewOutput(shape, "grad_sum");
        BinaryKernels.Apply<AddOperator>(this, g, y, "grad_sum");
        return y;
    }
}
