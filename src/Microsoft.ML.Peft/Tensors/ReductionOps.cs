namespace Microsoft.ML.Peft.Tensors;

/// <summary>Sum, mean and max over axes (with keepDim), with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>Sum of all elements (a 0-d tensor).</summary>
    public Tensor Sum() => Sum(AllAxes(), keepDim: false);

    /// <summary>Sum over one axis.</summary>
    public Tensor Sum(int axis, bool keepDim = false) => Sum([axis], keepDim);

    /// <summary>Sum over several axes.</summary>
    public Tensor Sum(int[] axes, bool keepDim = false)
    {
        RequireFloat32("sum");
        var reduced = NormalizeAxes(axes, "sum");
        var y = ReduceSum(reduced, keepDim, "sum");
        if (Autograd.ShouldRecord(this)) RecordBroadcastBack(this, y, reduced, 1f);
        return Autograd.Checked(y, this);
    }

    /// <summary>Mean of all elements (a 0-d tensor).</summary>
    public Tensor Mean() => Mean(AllAxes(), keepDim: false);

    /// <summary>Mean over one axis.</summary>
    public Tensor Mean(int axis, bool keepDim = false) => Mean([axis], keepDim);

    /// <summary>Mean over several axes.</summary>
    public Tensor Mean(int[] axes, bool keepDim = false)
    {
        RequireFloat32("mean");
        var reduced = NormalizeAxes(axes, "mean");
        long n = 1;
        foreach (int a in reduced) n *= shape[a];
        var y = ReduceSum(reduced, keepDim, "mean");
        float scale = 1f / n;
        MapKernels.Map(y, y, new ScalarRightMap<MultiplyOperator>(scale));
        if (Autograd.ShouldRecord(this)) RecordBroadcastBack(this, y, reduced, scale);
        return Autograd.Checked(y, this);
    }

    /// <summary>Maximum of all elements (a 0-d tensor); the gradient goes to the first maximum.</summary>
    public Tensor Max() => Reshape(-1).Max(0).Reshape([]);

    /// <summary>Maximum over one axis; the gradient goes to the first maximal element of each slice.</summary>
    public Tensor Max(int axis, bool keepDim = false)
    {
        RequireFloat32("max");
        int a = ShapeText.Axis(axis, Rank, "max");
        if (shape[a] == 0) throw new ArgumentException($"max: cannot reduce empty dimension {a} of {Describe}");
        var src = IsContiguous ? this : ContiguousCopy();
        var keepShape = (int[])shape.Clone();
        keepShape[a] = 1;
        var y = NewOutput(keepShape, "max");
        var index = NewOutput(keepShape, "max_index", DType.Int32);
        Split(a, a, out int outer, out int r, out int inner);
        ReductionKernels.Max(src.Ptr, y.Ptr, index.PtrAs<int>(), outer, r, inner);
        var result = keepDim ? y : y.View(DropAxes(keepShape, [a]), ShapeText.ContiguousStrides(DropAxes(keepShape, [a])), 0, "max");
        if (Autograd.ShouldRecord(this))
        {
            int[] inputShape = shape;
            var node = Autograd.Record("max", result, [this], (node, g) =>
            {
                var full = Zeros(inputShape);
                var gc = g.Contiguous();
                int* idx = index.PtrAs<int>();
                float* pg = gc.Ptr, pf = full.Ptr;
                for (int o = 0; o < outer; o++)
                {
                    for (int c = 0; c < inner; c++)
                    {
                        long j = (long)o * inner + c;
                        pf[((long)o * r + idx[j]) * inner + c] = pg[j];
                    }
                }
                node.AccumulateGrad(0, full);
            });
            node.SaveForBackward(index);
        }
        return Autograd.Checked(result, this);
    }

    /// <summary>Maximum over several axes (reduced one axis at a time, last first; ties go to the first maximum).</summary>
    public Tensor Max(int[] axes, bool keepDim = false)
    {
        var reduced = NormalizeAxes(axes, "max");
        var y = this;
        for (int i = reduced.Length - 1; i >= 0; i--) y = y.Max(reduced[i], keepDim: true);
        if (keepDim || reduced.Length == 0) return y;
        var keepShape = (int[])y.shape.Clone();
        return y.Reshape(DropAxes(keepShape, reduced));
    }

    /// <summary>Sums this gradient down to <paramref name="target"/> (undoing NumPy broadcasting).</summary>
    internal Tensor SumToShape(int[] target)
    {
        if (ShapeText.SameShape(shape, target)) return this;
        int lead = Rank - target.Length;
        if (lead < 0) throw new InvalidOperationException($"internal: cannot sum {Describe} down to {ShapeText.Format(target)}");
        var axes = new List<int>();
        for (int i = 0; i < Rank; i++)
        {
            if (i < lead || (target[i - lead] == 1 && shape[i] != 1)) axes.Add(i);
        }
        var summed = axes.Count == 0 ? this : Sum([.. axes], keepDim: true);
        return summed.Reshape(target);
    }

    private Tensor ReduceSum(int[] axes, bool keepDim, string op)
    {
        var current = IsContiguous ? this : ContiguousCopy();
        var keepShape = (int[])shape.Clone();
        // Reduce runs of adjacent axes, last run first, each as one [outer, R, inner] pass.
        int end = axes.Length - 1;
        bool any = false;
        while (end >= 0)
        {
            int start = end;
            while (start > 0 && axes[start - 1] == axes[start] - 1) start--;
            current.Split(axes[start], axes[end], out int outer, out int r, out int inner);
            for (int k = start; k <= end; k++) keepShape[axes[k]] = 1;
            var next = NewOutput((int[])keepShape.Clone(), op);
            if (r == 0) next.Span.Clear();
            else ReductionKernels.Sum(current.Ptr, next.Ptr, outer, r, inner);
            current = next;
            any = true;
            end = start - 1;
        }
        if (!any) current = current == this ? ContiguousCopy(op) : current;
        if (keepDim) return current;
        var dropped = DropAxes(keepShape, axes);
        return current.View(dropped, ShapeText.ContiguousStrides(dropped), current.offset, op);
    }

    /// <summary>Backward of sum/mean: the output gradient broadcast back over the reduced axes, times a scale.</summary>
    private static void RecordBroadcastBack(Tensor x, Tensor y, int[] axes, float scale)
    {
        int[] inputShape = x.shape;
        var keepShape = (int[])inputShape.Clone();
        foreach (int a in axes) keepShape[a] = 1;
        Autograd.Record(y.Op, y, [x], (node, g) =>
        {
            var expanded = g.Reshape(keepShape).Expand(inputShape);
            node.AccumulateGrad(0, scale == 1f ? expanded : expanded.Mul(scale));
        });
    }

    /// <summary>Views a contiguous tensor as [outer, R, inner] where R spans axes first..last.</summary>
    private void Split(int first, int last, out int outer, out int r, out int inner)
    {
        outer = 1;
        r = 1;
        inner = 1;
        for (int i = 0; i < first; i++) outer *= shape[i];
        for (int i = first; i <= last; i++) r *= shape[i];
        for (int i = last + 1; i < Rank; i++) inner *= shape[i];
    }

    private int[] AllAxes()
    {
        var axes = new int[Rank];
        for (int i = 0; i < Rank; i++) axes[i] = i;
        return axes;
    }

    private int[] NormalizeAxes(int[] axes, string op)
    {
        var result = new int[axes.Length];
        for (int i = 0; i < axes.Length; i++) result[i] = ShapeText.Axis(axes[i], Rank, op);
        Array.Sort(result);
        for (int i = 1; i < result.Length; i++)
        {
            if (result[i] == result[i - 1]) throw new ArgumentException($"{op}: axis {result[i]} repeated for {Describe}");
        }
        return result;
    }

    private static int[] DropAxes(int[] keepShape, int[] axes)
    {
        var result = new int[keepShape.Length - axes.Length];
        for (int i = 0, j = 0; i < keepShape.Length; i++)
        {
            if (Array.IndexOf(axes, i) < 0) result[j++] = keepShape[i];
        }
        return result;
    }
}
