namespace Microsoft.ML.Peft.Tensors;

/// <summary>Views (no copy) and layout changes, with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>
    /// The same elements in a new shape (one dimension may be −1, inferred). A view when the strides allow it
    /// (always for contiguous tensors); otherwise the elements are copied first.
    /// </summary>
    public Tensor Reshape(params int[] newShape)
    {
        var target = InferShape(newShape);
        Tensor y;
        if (ShapeText.SameShape(target, shape)) y = View(target, strides, offset, "reshape");
        else if (IsContiguous) y = View(target, ShapeText.ContiguousStrides(target), offset, "reshape");
        else if (ViewStrides(target) is { } viewStrides) y = View(target, viewStrides, offset, "reshape");
        else return Contiguous().Reshape(target);
        if (Autograd.ShouldRecord(this))
        {
            int[] inputShape = shape;
            Autograd.Record("reshape", y, [this], (node, g) => node.AccumulateGrad(0, g.Reshape(inputShape)));
        }
        return y;
    }

    /// <summary>Swaps two dimensions (a view).</summary>
    public Tensor Transpose(int dim0, int dim1)
    {
        int a = ShapeText.Axis(dim0, Rank, "transpose"), b = ShapeText.Axis(dim1, Rank, "transpose");
        var newShape = (int[])shape.Clone();
        var newStrides = (int[])strides.Clone();
        (newShape[a], newShape[b]) = (newShape[b], newShape[a]);
        (newStrides[a], newStrides[b]) = (newStrides[b], newStrides[a]);
        var y = View(newShape, newStrides, offset, "transpose");
        if (Autograd.ShouldRecord(this)) Autograd.Record("transpose", y, [this], (node, g) => node.AccumulateGrad(0, g.Transpose(a, b)));
        return y;
    }

    /// <summary>Reorders dimensions: output dimension i is input dimension <paramref name="order"/>[i] (a view).</summary>
    public Tensor Permute(params int[] order)
    {
        if (order.Length != Rank) throw new ArgumentException($"permute: order has {order.Length} entries for {Describe} of rank {Rank}");
        var newShape = new int[Rank];
        var newStrides = new int[Rank];
        var inverse = new int[Rank];
        var seen = new bool[Rank];
        for (int i = 0; i < Rank; i++)
        {
            int d = ShapeText.Axis(order[i], Rank, "permute");
            if (seen[d]) throw new ArgumentException($"permute: dimension {d} repeated in ({string.Join(", ", order)})");
            seen[d] = true;
            newShape[i] = shape[d];
            newStrides[i] = strides[d];
            inverse[d] = i;
        }
        var y = View(newShape, newStrides, offset, "permute");
        if (Autograd.ShouldRecord(this)) Autograd.Record("permute", y, [this], (node, g) => node.AccumulateGrad(0, g.Permute(inverse)));
        return y;
    }

    /// <summary>Elements [start, start+length) along <paramref name="dim"/> (a view).</summary>
    public Tensor Narrow(int dim, int start, int length)
    {
        int d = ShapeText.Axis(dim, Rank, "narrow");
        if (start < 0 || length < 0 || start + length > shape[d])
            throw new ArgumentOutOfRangeException(nameof(start), $"narrow: [{start}, {start + length}) is outside dimension {d} of {Describe}");
        var newShape = (int[])shape.Clone();
        newShape[d] = length;
        var y = View(newShape, strides, offset + start * strides[d], "narrow");
        if (Autograd.ShouldRecord(this))
        {
            int[] inputShape = shape;
            Autograd.Record("narrow", y, [this], (node, g) =>
            {
                var full = Zeros(inputShape);
                full.NarrowNoGrad(d, start, length).CopyFromNoVersion(g);
                node.AccumulateGrad(0, full);
            });
        }
        return y;
    }

    /// <summary>Elements [start, end) along <paramref name="dim"/> (a view; Python's x[..., start:end]).</summary>
    public Tensor Slice(int dim, int start, int end) => Narrow(dim, start, end - start);

    /// <summary>Index <paramref name="index"/> of <paramref name="dim"/>, removing that dimension (a view; x[:, i]).</summary>
    public Tensor Select(int dim, int index) => Narrow(dim, index, 1).Squeeze(dim);

    /// <summary>
    /// Broadcasts size-1 dimensions (and new leading dimensions) to <paramref name="newShape"/> with stride 0 (a view);
    /// −1 keeps a dimension.
    /// </summary>
    public Tensor Expand(params int[] newShape)
    {
        if (newShape.Length < Rank) throw new ArgumentException($"expand: target {ShapeText.Format(newShape)} has fewer dimensions than {Describe}");
        var target = new int[newShape.Length];
        var newStrides = new int[newShape.Length];
        int lead = newShape.Length - Rank;
        for (int i = 0; i < newShape.Length; i++)
        {
            int src = i - lead;
            int want = newShape[i];
            if (src < 0)
            {
                if (want < 0) throw new ArgumentException($"expand: −1 is not allowed for new leading dimension {i}");
                target[i] = want;
                newStrides[i] = 0;
            }
            else if (want == -1 || want == shape[src])
            {
                target[i] = shape[src];
                newStrides[i] = strides[src];
            }
            else if (shape[src] == 1)
            {
                target[i] = want;
                newStrides[i] = 0;
            }
            else
            {
                throw new ArgumentException($"expand: cannot expand {Describe} to {ShapeText.Format(newShape)} (dimension {i}: {shape[src]} → {want})");
            }
        }
        var y = View(target, newStrides, offset, "expand");
        if (Autograd.ShouldRecord(this))
        {
            int[] inputShape = shape;
            Autograd.Record("expand", y, [this], (node, g) => node.AccumulateGrad(0, g.SumToShape(inputShape)));
        }
        return y;
    }

    /// <summary>Inserts a size-1 dimension at <paramref name="dim"/> (a view; −1 appends).</summary>
    public Tensor Unsqueeze(int dim)
    {
        int d = dim < 0 ? dim + Rank + 1 : dim;
        if (d < 0 || d > Rank) throw new ArgumentOutOfRangeException(nameof(dim), $"unsqueeze: dim {dim} out of range for {Describe}");
        var newShape = new int[Rank + 1];
        for (int i = 0, j = 0; i <= Rank; i++) newShape[i] = i == d ? 1 : shape[j++];
        return Reshape(newShape);
    }

    /// <summary>Removes dimension <paramref name="dim"/>, which must have size 1 (a view).</summary>
    public Tensor Squeeze(int dim)
    {
        int d = ShapeText.Axis(dim, Rank, "squeeze");
        if (shape[d] != 1) throw new ArgumentException($"squeeze: dimension {d} of {Describe} has size {shape[d]}, not 1");
        var newShape = new int[Rank - 1];
        for (int i = 0, j = 0; i < Rank; i++)
        {
            if (i != d) newShape[j++] = shape[i];
        }
        return Reshape(newShape);
    }

    /// <summary>This tensor if contiguous, otherwise a contiguous copy (differentiable).</summary>
    public Tensor Contiguous()
    {
        if (IsContiguous) return this;
        var y = ContiguousCopy();
        if (Autograd.ShouldRecord(this)) Autograd.Record("contiguous", y, [this], static (node, g) => node.AccumulateGrad(0, g));
        return y;
    }

    /// <summary>A contiguous copy of the elements (differentiable), even when already contiguous.</summary>
    public Tensor Clone()
    {
        var y = ContiguousCopy("clone");
        if (Autograd.ShouldRecord(this)) Autograd.Record("clone", y, [this], static (node, g) => node.AccumulateGrad(0, g));
        return y;
    }

    /// <summary>A contiguous copy that is not recorded (any dtype).</summary>
    internal Tensor ContiguousCopy(string op = "contiguous")
    {
        var y = NewOutput(shape, op, DType);
        switch (DTypeInfo.SizeOf(DType))
        {
            case 4: StridedCopy.Copy(this, new Span<float>(y.Ptr, count)); break;
            default: StridedCopy.Copy(this, new Span<ushort>(y.PtrAs<ushort>(), count)); break;
        }
        return y;
    }

    /// <summary>Narrow without recording (backward helpers).</summary>
    internal Tensor NarrowNoGrad(int dim, int start, int length)
    {
        var newShape = (int[])shape.Clone();
        newShape[dim] = length;
        return View(newShape, strides, offset + start * strides[dim], "narrow");
    }

    private int[] InferShape(int[] requested)
    {
        int infer = -1;
        long known = 1;
        for (int i = 0; i < requested.Length; i++)
        {
            if (requested[i] == -1)
            {
                if (infer >= 0) throw new ArgumentException($"reshape: more than one −1 in {ShapeText.Format(requested)}");
                infer = i;
            }
            else if (requested[i] < 0)
            {
                throw new ArgumentException($"reshape: invalid size {requested[i]} in {ShapeText.Format(requested)}");
            }
            else
            {
                known *= requested[i];
            }
        }
        var result = (int[])requested.Clone();
        if (infer >= 0)
        {
            if (known == 0 || count % known != 0)
                throw new ArgumentException($"reshape: cannot infer −1 in {ShapeText.Format(requested)} for {Describe} ({count} elements)");
            result[infer] = (int)(count / known);
            known *= result[infer];
        }
        if (known != count)
            throw new ArgumentException($"reshape: shape {ShapeText.Format(requested)} ({known} elements) is invalid for {Describe} ({count} elements)");
        return result;
    }

    /// <summary>
    /// Strides that express <paramref name="target"/> over this layout without copying, or null. Works chunk by
    /// chunk: maximal runs of input dimensions that are contiguous with each other can be split or merged freely;
    /// a target dimension that would straddle two runs makes a view impossible.
    /// </summary>
    private int[]? ViewStrides(int[] target)
    {
        if (count == 0) return ShapeText.ContiguousStrides(target);
        var result = new int[target.Length];
        int t = target.Length - 1;
        long chunkElements = 1, viewElements = 1;
        int baseStride = strides.Length > 0 ? strides[^1] : 1;
        for (int d = Rank - 1; d >= 0; d--)
        {
            chunkElements *= shape[d];
            bool chunkEnds = d == 0 || (shape[d - 1] != 1 && strides[d - 1] != chunkElements * baseStride);
            if (!chunkEnds) continue;
            while (t >= 0 && (viewElements < chunkElements || target[t] == 1))
            {
                result[t] = (int)(viewElements * baseStride);
                viewElements *= target[t];
                t--;
            }
            if (viewElements != chunkElements) return null;
            if (d > 0)
            {
                baseStride = strides[d - 1];
                chunkElements = 1;
                viewElements = 1;
            }
        }
        return t == -1 ? result : null;
    }
}
