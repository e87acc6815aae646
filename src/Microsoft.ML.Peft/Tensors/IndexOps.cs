namespace Microsoft.ML.Peft.Tensors;

/// <summary>Selection by masks and indices (where, masked fill, gather, index-select, embedding), with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>
    /// Elementwise choice: <paramref name="a"/> where <paramref name="condition"/> (int32, non-zero = true) else
    /// <paramref name="b"/>; all three broadcast together.
    /// </summary>
    public static Tensor Where(Tensor condition, Tensor a, Tensor b)
    {
        ArgumentNullException.ThrowIfNull(condition);
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        const string op = "where";
        if (condition.DType != DType.Int32) throw new ArgumentException($"{op}: condition {condition.Describe} must be int32 (non-zero = true)");
        a.RequireFloat32(op);
        b.RequireFloat32(op);
        var outShape = ShapeText.Broadcast(ShapeText.Broadcast(condition.shape, a.shape, op), b.shape, op);
        var mask = condition.BroadcastContiguous(outShape);
        var y = NewOutput(outShape, op);
        y.CopyFromNoVersion(b);
        var av = a.BroadcastContiguous(outShape);
        int* m = mask.PtrAs<int>();
        float* pa = av.Ptr, py = y.Ptr;
        for (int i = 0; i < y.count; i++)
        {
            if (m[i] != 0) py[i] = pa[i];
        }
        if (Autograd.ShouldRecord(a, b))
        {
            int[] aShape = a.shape, bShape = b.shape;
            var node = Autograd.Record(op, y, [a, b], (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                if (node.NeedsGrad(0)) node.AccumulateGrad(0, SelectByMask(gc, mask, keepWhere: true).SumToShape(aShape));
                if (node.NeedsGrad(1)) node.AccumulateGrad(1, SelectByMask(gc, mask, keepWhere: false).SumToShape(bShape));
            });
            node.SaveForBackward(mask);
        }
        return Autograd.Checked(y, a, b);
    }

    /// <summary>Replaces elements where <paramref name="mask"/> (int32, broadcast to this shape) is non-zero by <paramref name="value"/>.</summary>
    public Tensor MaskedFill(Tensor mask, float value)
    {
        ArgumentNullException.ThrowIfNull(mask);
        const string op = "masked_fill";
        RequireFloat32(op);
        if (mask.DType != DType.Int32) throw new ArgumentException($"{op}: mask {mask.Describe} must be int32 (non-zero = fill)");
        if (!ShapeText.SameShape(ShapeText.Broadcast(shape, mask.shape, op), shape))
            throw new ArgumentException($"{op}: mask {mask.Describe} does not broadcast to {Describe}");
        var m = mask.BroadcastContiguous(shape);
        var y = ContiguousCopy(op);
        int* pm = m.PtrAs<int>();
        float* py = y.Ptr;
        for (int i = 0; i < count; i++)
        {
            if (pm[i] != 0) py[i] = value;
        }
        if (Autograd.ShouldRecord(this))
        {
            var node = Autograd.Record(op, y, [this], (node, g) =>
                node.AccumulateGrad(0, SelectByMask(g.IsContiguous ? g : g.ContiguousCopy(), m, keepWhere: false)));
            node.SaveForBackward(m);
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>
    /// torch.gather: out[i][j][k] = x[index[i][j][k]][j][k] for dim 0 (likewise for other dims); int32
    /// <paramref name="index"/> has this tensor's rank and sizes no larger than this tensor's outside <paramref name="dim"/>.
    /// </summary>
    public Tensor Gather(int dim, Tensor index)
    {
        ArgumentNullException.ThrowIfNull(index);
        const string op = "gather";
        RequireFloat32(op);
        int d = ShapeText.Axis(dim, Rank, op);
        if (index.DType != DType.Int32 || index.Rank != Rank)
            throw new ArgumentException($"{op}: index {index.Describe} must be int32 with the rank of {Describe}");
        for (int i = 0; i < Rank; i++)
        {
            if (i != d && index.shape[i] > shape[i])
                throw new ArgumentException($"{op}: index {index.Describe} is larger than {Describe} in dimension {i}");
        }
        var idx = index.IsContiguous ? index : index.ContiguousCopy();
        var y = NewOutput(idx.shape, op);
        var sources = GatherOffsets(this, idx, d, op);
        float* basePtr = (float*)storage.Pointer, py = y.Ptr;
        for (int i = 0; i < sources.Length; i++) py[i] = basePtr[sources[i]];
        if (Autograd.ShouldRecord(this))
        {
            int[] inputShape = shape;
            var node = Autograd.Record(op, y, [this], (node, g) =>
            {
                var full = Zeros(inputShape);
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                var targets = GatherOffsets(full, idx, d, op);
                float* pf = full.Ptr, pg = gc.Ptr;
                for (int i = 0; i < targets.Length; i++) pf[targets[i]] += pg[i];
                node.AccumulateGrad(0, full);
            });
            node.SaveForBackward(idx);
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>Rows (slices along <paramref name="dim"/>) picked by a 1-D int32 index list, in order (repeats allowed).</summary>
    public Tensor IndexSelect(int dim, Tensor indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        const string op = "index_select";
        RequireFloat32(op);
        int d = ShapeText.Axis(dim, Rank, op);
        if (indices.DType != DType.Int32 || indices.Rank != 1)
            throw new ArgumentException($"{op}: indices {indices.Describe} must be a 1-D int32 tensor");
        var ids = indices.IsContiguous ? indices : indices.ContiguousCopy();
        CheckIndices(ids, shape[d], op, $"dimension {d} of {Describe}");
        var moved = d == 0 ? this : TransposeNoGrad(0, d);
        var selectedShape = (int[])moved.shape.Clone();
        selectedShape[0] = ids.count;
        var selected = RowsOf(moved, ids, selectedShape, op);
        var y = d == 0 ? selected : selected.TransposeNoGrad(0, d).ContiguousCopy(op);
        if (Autograd.ShouldRecord(this))
        {
            int[] inputShape = shape;
            Autograd.Record(op, y, [this], (node, g) =>
            {
                var gMoved = (d == 0 ? g : g.TransposeNoGrad(0, d)).ContiguousCopy();
                var movedShape = (int[])inputShape.Clone();
                (movedShape[0], movedShape[d]) = (movedShape[d], movedShape[0]);
                var full = Zeros(movedShape);
                ScatterAddRows(full.Ptr, gMoved.Ptr, ids, full.count / Math.Max(movedShape[0], 1));
                node.AccumulateGrad(0, d == 0 ? full : full.TransposeNoGrad(0, d));
            });
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>
    /// Embedding lookup on this weight [vocab, dim] (float32, or frozen bfloat16/float16 rows widened as read):
    /// output [..ids.shape, dim]. In backward only the rows used receive gradient, accumulated straight into the
    /// weight's gradient buffer; rows equal to <paramref name="paddingIndex"/> receive none (PyTorch's padding_idx).
    /// </summary>
    public Tensor Embedding(Tensor ids, int? paddingIndex = null)
    {
        ArgumentNullException.ThrowIfNull(ids);
        const string op = "embedding";
        if (Rank != 2) throw new ArgumentException($"{op}: weight {Describe} must be [vocab, dim]");
        if (ids.DType != DType.Int32) throw new ArgumentException($"{op}: ids {ids.Describe} must be int32 token ids");
        int vocab = shape[0];
        var idArray = ids.IsContiguous ? ids : ids.ContiguousCopy();
        CheckIndices(idArray, vocab, op, $"the vocabulary of weight {Describe}");
        var outShape = new int[ids.Rank + 1];
        ids.ShapeRef.CopyTo(outShape, 0);
        outShape[^1] = shape[1];
        var y = RowsOf(this, idArray, outShape, op);
        if (Autograd.ShouldRecord(this))
        {
            int width = shape[1];
            var node = Autograd.Record(op, y, [this], (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                var target = node.LeafGradTarget(0, out bool accumulate);
                var grad = target ?? Zeros(vocab, width);
                if (target is not null && !accumulate) grad.Span.Clear();
                ScatterAddRows(grad.Ptr, gc.Ptr, idArray, width, paddingIndex);
                if (target is null) node.AccumulateGrad(0, grad);
            });
            node.SaveForBackward(idArray);
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>Copies rows <paramref name="ids"/> of a [rows, ...] tensor (any float dtype) into a float32 output of <paramref name="outShape"/>.</summary>
    private static Tensor RowsOf(Tensor table, Tensor ids, int[] outShape, string op)
    {
        int width = table.count / Math.Max(table.shape[0], 1);
        var y = NewOutput(outShape, op);
        var src = table.IsContiguous ? table : table.ContiguousCopy();
        float* py = y.Ptr;
        int* pid = ids.PtrAs<int>();
        for (int i = 0; i < ids.count; i++)
        {
            var dst = new Span<float>(py + (long)i * width, width);
            long start = (long)pid[i] * width;
            switch (src.DType)
            {
                case DType.Float32: new ReadOnlySpan<float>(src.Ptr + start, width).CopyTo(dst); break;
                case DType.BFloat16: BFloat16.ToFloat(new ReadOnlySpan<ushort>(src.PtrAs<ushort>() + start, width), dst); break;
                case DType.Float16: System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(new ReadOnlySpan<Half>(src.PtrAs<Half>() + start, width), dst); break;
                default: throw new NotSupportedException($"{op}: table {table.Describe} must hold floats");
            }
        }
        return y;
    }

    /// <summary>grad[ids[i]] += g[i] for each row i (rows of <paramref name="width"/> floats), skipping <paramref name="skip"/>.</summary>
    private static void ScatterAddRows(float* grad, float* g, Tensor ids, int width, int? skip = null)
    {
        int* pid = ids.PtrAs<int>();
        for (int i = 0; i < ids.count; i++)
        {
            if (pid[i] == skip) continue;
            var dst = new Span<float>(grad + (long)pid[i] * width, width);
            System.Numerics.Tensors.TensorPrimitives.Add(dst, new ReadOnlySpan<float>(g + (long)i * width, width), dst);
        }
    }

    private static void CheckIndices(Tensor ids, int limit, string op, string what)
    {
        int* pid = ids.PtrAs<int>();
        for (int i = 0; i < ids.count; i++)
        {
            if ((uint)pid[i] >= (uint)limit)
                throw new ArgumentOutOfRangeException(nameof(ids), $"{op}: index {pid[i]} at position {i} is outside [0, {limit}) for {what}");
        }
    }

    /// <summary>g where the mask is non-zero (keepWhere) or zero (!keepWhere), 0 elsewhere.</summary>
    private static Tensor SelectByMask(Tensor g, Tensor mask, bool keepWhere)
    {
        var r = NewOutput(g.shape, "mask_select");
        int* m = mask.PtrAs<int>();
        float* pg = g.Ptr, pr = r.Ptr;
        for (int i = 0; i < g.count; i++) pr[i] = (m[i] != 0) == keepWhere ? pg[i] : 0f;
        return r;
    }

    /// <summary>A contiguous copy of this tensor broadcast to <paramref name="target"/> (any 4-byte dtype).</summary>
    private Tensor BroadcastContiguous(int[] target)
    {
        if (ShapeText.SameShape(shape, target) && IsContiguous) return this;
        var lead = target.Length - Rank;
        var s = new int[target.Length];
        for (int i = 0; i < target.Length; i++)
        {
            int src = i - lead;
            s[i] = src < 0 || shape[src] == 1 ? 0 : strides[src];
        }
        return View(target, s, offset, Op).ContiguousCopy();
    }

    private Tensor TransposeNoGrad(int a, int b)
    {
        var newShape = (int[])shape.Clone();
        var newStrides = (int[])strides.Clone();
        (newShape[a], newShape[b]) = (newShape[b], newShape[a]);
        (newStrides[a], newStrides[b]) = (newStrides[b], newStrides[a]);
        return View(newShape, newStrides, offset, "transpose");
    }

    /// <summary>For every element of <paramref name="index"/>, the storage offset in <paramref name="table"/> it selects.</summary>
    private static int[] GatherOffsets(Tensor table, Tensor index, int dim, string op)
    {
        int* idx = index.PtrAs<int>();
        int rank = index.Rank;
        var result = new int[index.count];
        Span<int> coord = stackalloc int[rank];
        for (int flat = 0; flat < index.count; flat++)
        {
            int rem = flat;
            for (int i = rank - 1; i >= 0; i--)
            {
                coord[i] = rem % index.shape[i];
                rem /= index.shape[i];
            }
            int j = idx[flat];
            if ((uint)j >= (uint)table.shape[dim])
                throw new ArgumentOutOfRangeException(nameof(index), $"{op}: index {j} at flat position {flat} is outside [0, {table.shape[dim]}) for dimension {dim} of {table.Describe}");
            int src = table.offset;
            for (int i = 0; i < rank; i++) src += (i == dim ? j : coord[i]) * table.strides[i];
            result[flat] = src;
        }
        return result;
    }
}
