namespace Microsoft.ML.Peft.Tensors;

/// <summary>How a per-element loss is reduced (PyTorch's <c>reduction</c>).</summary>
public enum Reduction
{
    /// <summary>No reduction: one loss per row.</summary>
    None,

    /// <summary>Weighted mean, as PyTorch defines it for each loss.</summary>
    Mean,

    /// <summary>Sum.</summary>
    Sum,
}

/// <summary>Fused loss functions: cross-entropy (log-softmax + NLL, label smoothing, class weights) and MSE.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>
    /// torch.nn.functional.cross_entropy with class-index targets, on logits [..., C] (classes in the LAST dimension,
    /// unlike PyTorch's dim 1 for >2-D inputs) and int32 <paramref name="targets"/> of shape [...].
    /// Rows whose target equals <paramref name="ignoreIndex"/> contribute nothing. With label smoothing ε and class
    /// weights w, each row contributes (1−ε)·(−w_y·log p_y) + (ε/C)·(−Σ_c w_c·log p_c); the mean divides by Σ w_y over
    /// non-ignored rows (their count without weights), exactly as PyTorch (NaN when every row is ignored).
    /// </summary>
    public Tensor CrossEntropy(Tensor targets, int ignoreIndex = -100, float labelSmoothing = 0f,
        Tensor? classWeights = null, Reduction reduction = Reduction.Mean)
    {
        ArgumentNullException.ThrowIfNull(targets);
        const string op = "cross_entropy";
        RequireFloat32(op);
        if (Rank < 1) throw new ArgumentException($"{op}: logits {Describe} must be [..., classes]");
        int c = shape[^1];
        int rows = c == 0 ? 0 : count / c;
        if (targets.DType != DType.Int32) throw new ArgumentException($"{op}: targets {targets.Describe} must be int32 class indices");
        if (!targets.Shape.SequenceEqual(shape.AsSpan(0, Rank - 1)))
            throw new ArgumentException($"{op}: targets {targets.Describe} must have the logits' shape without the class dimension: {ShapeText.Format(shape.AsSpan(0, Rank - 1))} for logits {Describe}");
        if (labelSmoothing is < 0f or > 1f) throw new ArgumentOutOfRangeException(nameof(labelSmoothing), $"{op}: label smoothing {labelSmoothing} is not in [0, 1]");
        if (classWeights is not null)
        {
            classWeights.RequireFloat32(op);
            if (classWeights.Rank != 1 || classWeights.shape[0] != c)
                throw new ArgumentException($"{op}: class weights {classWeights.Describe} must be [{c}] for logits {Describe}");
        }
        var x = IsContiguous ? this : ContiguousCopy();
        var t = targets.IsContiguous ? targets : targets.ContiguousCopy();
        var w = classWeights is null ? null : classWeights.IsContiguous ? classWeights : classWeights.ContiguousCopy();
        int* ty = t.PtrAs<int>();
        for (int i = 0; i < rows; i++)
        {
            if (ty[i] != ignoreIndex && (uint)ty[i] >= (uint)c)
                throw new ArgumentOutOfRangeException(nameof(targets), $"{op}: target {ty[i]} at row {i} is outside [0, {c}) for logits {Describe} (ignore_index is {ignoreIndex})");
        }

        var lse = NewOutput([rows], op + "_logsumexp");
        var perRow = NewOutput([rows], op);
        float* wp = w is null ? null : w.Ptr;
        double weightSum = CrossEntropyKernels.Forward(x.Ptr, ty, wp, lse.Ptr, perRow.Ptr, rows, c, ignoreIndex, labelSmoothing);
        Tensor y;
        if (reduction == Reduction.None) y = perRow.View(targets.ShapeRef, ShapeText.ContiguousStrides(targets.ShapeRef), 0, op);
        else
        {
            double total = 0;
            for (int i = 0; i < rows; i++) total += perRow.Ptr[i];
            y = NewOutput([], op);
            *y.Ptr = reduction == Reduction.Mean ? (float)(total / weightSum) : (float)total;
        }
        if (Autograd.ShouldRecord(this))
        {
            float meanScale = reduction == Reduction.Mean ? (float)(1.0 / weightSum) : 1f;
            var node = Autograd.Record(op, y, [this], (node, g) =>
            {
                var gc = g.IsContiguous ? g : g.ContiguousCopy();
                var dx = NewOutput(x.shape, op + "_backward");
                CrossEntropyKernels.Backward(x.Ptr, ty, w is null ? null : w.Ptr, lse.Ptr, gc.Ptr, reduction == Reduction.None, meanScale, dx.Ptr, rows, c, ignoreIndex, labelSmoothing);
                node.AccumulateGrad(0, dx);
            });
            if (w is null) node.SaveForBackward(x, t);
            else node.SaveForBackward(x, t, w);
        }
        return Autograd.Checked(y, this);
    }

    /// <summary>Mean (or sum, or per-element) squared error against a target of the same shape.</summary>
    public Tensor MseLoss(Tensor target, Reduction reduction = Reduction.Mean)
    {
        ArgumentNullException.ThrowIfNull(target);
        if (!target.Shape.SequenceEqual(Shape))
            throw new ArgumentException($"mse_loss: input {Describe} and target {target.Describe} must have the same shape");
        var diff = Sub(target);
        var sq = diff.Mul(diff);
        return reduction switch
        {
            Reduction.None => sq,
            Reduction.Sum => sq.Sum(),
            _ => sq.Mean(),
        };
    }
}
