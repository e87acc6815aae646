namespace Microsoft.ML.Peft.Tensors;

/// <summary>Matrix products (batched, broadcast, transposed views without copies) and the linear layer, with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>
    /// Matrix product over the last two dimensions, [..., M, K] × [..., K, N] → [..., M, N], with NumPy broadcasting of
    /// the batch dimensions. Transposed views are passed to GEMM as flags (no copy). The right operand may be a
    /// bfloat16/float16 weight (widened inside the kernel); the left operand must be float32.
    /// </summary>
    public Tensor MatMul(Tensor other)
    {
        ArgumentNullException.ThrowIfNull(other);
        var y = MatMulForward(this, other, "matmul");
        if (Autograd.ShouldRecord(this, other))
        {
            var node = Autograd.Record("matmul", y, [this, other], static (node, g) =>
            {
                Tensor a = node.Inputs[0], b = node.Inputs[1];
                if (node.NeedsGrad(0)) node.AccumulateGrad(0, MatMulForward(g, b.Transpose(-1, -2), "matmul_backward").SumToShape(a.shape));
                if (!node.NeedsGrad(1)) return;
                if (b.Rank == 2)
                {
                    // Fold every batch row of a into one product: dB = a2ᵀ · g2 with a2 = [rows, K], g2 = [rows, N].
                    var a2 = a.Reshape(-1, a.shape[^1]);
                    var g2 = g.Reshape(-1, g.shape[^1]);
                    node.AccumulateGrad(1, MatMulForward(a2.Transpose(0, 1), g2, "matmul_backward"));
                }
                else
                {
                    node.AccumulateGrad(1, MatMulForward(a.Transpose(-1, -2), g, "matmul_backward").SumToShape(b.shape));
                }
            });
            node.SaveForBackward(this, other);
        }
        return Autograd.Checked(y, this, other);
    }

    /// <summary>
    /// y = x·Wᵀ + b as torch.nn.functional.linear: x [..., in], <paramref name="weight"/> [out, in] (float32, or a
    /// frozen bfloat16/float16 weight), <paramref name="bias"/> [out] or null. Leading dimensions of x are folded into
    /// the rows of one GEMM; the bias initialises the output so the GEMM accumulates onto it. In backward the weight
    /// gradient is written straight into the weight's gradient buffer and skipped entirely for a frozen weight.
    /// </summary>
    public Tensor Linear(Tensor weight, Tensor? bias = null)
    {
        ArgumentNullException.ThrowIfNull(weight);
        const string op = "linear";
        RequireFloat32(op);
        if (weight.Rank != 2) throw new ArgumentException($"{op}: weight {weight.Describe} must be 2-D [out_features, in_features]");
        int outF = weight.shape[0], inF = weight.shape[1];
        if (Rank < 1 || shape[^1] != inF)
            throw new ArgumentException($"{op}: input {Describe} does not end in in_features = {inF} of weight {weight.Describe}");
        if (bias is not null)
        {
            bias.RequireFloat32(op);
            if (bias.Rank != 1 || bias.shape[0] != outF)
                throw new ArgumentException($"{op}: bias {bias.Describe} must be [{outF}] to match weight {weight.Describe}");
        }
        var x2 = FoldRows(this, inF);
        int rows = x2.shape[0];
        var outShape = (int[])shape.Clone();
        outShape[^1] = outF;
        var y = NewOutput(outShape, op);
        float beta = 0f;
        if (bias is not null && rows > 0)
        {
            var b = bias.IsContiguous ? bias : bias.ContiguousCopy();
            var ys = y.Span;
            for (int r = 0; r < rows; r++) b.Span.CopyTo(ys.Slice(r * outF, outF));
            beta = 1f;
        }
        var aOp = GemmOperand.ForMatrix(ref x2);
        var bOp = TransposedWeight(weight, out _);
        GemmDispatch.Run(aOp, bOp, rows, outF, inF, 1f, y.Ptr, outF, beta);
        if (Autograd.ShouldRecord(this, weight, bias))
        {
            Tensor[] inputs = bias is null ? [this, weight] : [this, weight, bias];
            var node = Autograd.Record(op, y, inputs, static (node, g) => LinearBackward(node, g));
            node.SaveForBackward(this, weight);
        }
        return Autograd.Checked(y, this, weight, bias);
    }

    private static void LinearBackward(Node node, Tensor g)
    {
        Tensor x = node.Inputs[0], w = node.Inputs[1];
        int outF = w.shape[0], inF = w.shape[1];
        var g2 = FoldRows(g, outF);
        if (!g2.IsContiguous) g2 = g2.ContiguousCopy();
        int rows = g2.shape[0];
        var gOp = GemmOperand.ForMatrix(ref g2);
        if (node.NeedsGrad(0))
        {
            // dx = g · W   ([rows, out] × [out, in])
            var dx = NewOutput(x.shape, "linear_backward");
            var wOp = GemmOperand.ForMatrix(ref w);
            GemmDispatch.Run(gOp, wOp, rows, inF, outF, 1f, dx.Ptr, inF, 0f);
            node.AccumulateGrad(0, dx);
        }
        if (node.NeedsGrad(1))
        {
            // dW = gᵀ · x   ([out, rows] × [rows, in]), accumulated in place into the weight's gradient when possible.
            var x2 = FoldRows(x, inF);
            var xOp = GemmOperand.ForMatrix(ref x2);
            GemmOperand.TryCreate(g2, g2.Offset, outF, rows, 1, outF, out var gT);
            var target = node.LeafGradTarget(1, out bool accumulate);
            var dw = target ?? NewOutput(w.shape, "linear_backward");
            GemmDispatch.Run(gT, xOp, outF, inF, rows, 1f, dw.Ptr, inF, target is not null && accumulate ? 1f : 0f);
            if (target is null) node.AccumulateGrad(1, dw);
        }
        if (node.Inputs.Count > 2 && node.NeedsGrad(2))
        {
            var db = NewOutput([outF], "linear_backward");
            ReductionKernels.Sum(g2.Ptr, db.Ptr, 1, rows, outF);
            node.AccumulateGrad(2, db);
        }
    }

    /// <summary>Views [..., width] as [rows, width] (a view when the leading dimensions fold; otherwise a copy).</summary>
    private static Tensor FoldRows(Tensor t, int width)
    {
        int rows = width == 0 ? 0 : t.count / Math.Max(width, 1);
        if (t.Rank == 2) return t;
        using (Autograd.NoGrad()) return t.Reshape(rows, width);
    }

    /// <summary>op(B) = Wᵀ for a weight stored [out, in]: a flag, never a copy, unless the weight's layout is arbitrary.</summary>
    private static GemmOperand TransposedWeight(Tensor weight, out Tensor used)
    {
        used = weight;
        int outF = weight.shape[0], inF = weight.shape[1];
        if (GemmOperand.TryCreate(weight, weight.offset, inF, outF, weight.strides[1], weight.strides[0], out var op)) return op;
        used = weight.ContiguousCopy();
        GemmOperand.TryCreate(used, used.offset, inF, outF, 1, inF, out op);
        return op;
    }

    /// <summary>The forward product without recording (also used by backward).</summary>
    internal static Tensor MatMulForward(Tensor a, Tensor b, string op)
    {
        if (a.Rank < 2 || b.Rank < 2)
            throw new ArgumentException($"{op}: operands must have at least 2 dimensions, got {a.Describe} and {b.Describe}");
        int m = a.shape[^2], k = a.shape[^1], n = b.shape[^1];
        if (b.shape[^2] != k)
            throw new ArgumentException($"{op}: inner dimensions differ: {a.Describe} × {b.Describe} ({k} vs {b.shape[^2]})");
        int[] batch;
        try
        {
            batch = ShapeText.Broadcast(a.shape.AsSpan(0, a.Rank - 2), b.shape.AsSpan(0, b.Rank - 2), op);
        }
        catch (ArgumentException)
        {
            throw new ArgumentException($"{op}: batch dimensions of {a.Describe} and {b.Describe} cannot be broadcast together");
        }
        var outShape = new int[batch.Length + 2];
        batch.CopyTo(outShape, 0);
        outShape[^2] = m;
        outShape[^1] = n;
        var y = NewOutput(outShape, op);
        if (y.count == 0) return y;

        // b is a plain matrix and a's rows fold: one GEMM with M = batch·m rows.
        if (b.Rank == 2 && a.Rank > 2 && a.strides[^1] == 1 && a.ViewStrides([a.count / Math.Max(k, 1), k]) is { } folded)
        {
            var aOp = new GemmOperand(a, a.offset, a.count / k, k, false, k == 0 ? 1 : Math.Max(folded[0], k));
            var bOp = GemmOperand.ForMatrix(ref b);
            GemmDispatch.Run(aOp, bOp, a.count / k, n, k, 1f, y.Ptr, n, 0f);
            return y;
        }

        var aMat = GemmOperand.ForMatrix(ref a);
        var bMat = GemmOperand.ForMatrix(ref b);
        var aBatch = a.View(batch, BatchStrides(a, batch), a.offset, op);
        var bBatch = b.View(batch, BatchStrides(b, batch), b.offset, op);
        var loop = StridedLoop.Create(batch, aBatch, bBatch, op);
        long strideC = (long)m * n;
        for (int row = 0; row < loop.RowCount; row++)
        {
            loop.Offsets(row, out int oc, out int oa, out int ob);
            var ai = new GemmOperand(a, aMat.Offset + oa, aMat.Rows, aMat.Cols, aMat.Trans, aMat.Ld);
            var bi = new GemmOperand(b, bMat.Offset + ob, bMat.Rows, bMat.Cols, bMat.Trans, bMat.Ld);
            GemmDispatch.RunBatched(ai, loop.RowStrideA, bi, loop.RowStrideB, m, n, k, y.Ptr + oc * strideC, n, strideC, loop.RowLength);
        }
        return y;
    }

    /// <summary>Strides of a tensor's batch dimensions broadcast to <paramref name="batch"/> (0 where broadcast).</summary>
    private static int[] BatchStrides(Tensor t, int[] batch)
    {
        var result = new int[batch.Length];
        int tb = t.Rank - 2;
        for (int i = 0; i < batch.Length; i++)
        {
            int d = i - (batch.Length - tb);
            result[i] = d < 0 || t.shape[d] == 1 ? 0 : t.strides[d];
        }
        return result;
    }
}
