namespace Microsoft.ML.Peft.Tensors;

/// <summary>Concatenation, stacking and splitting, with backward.</summary>
public sealed unsafe partial class Tensor
{
    /// <summary>Joins tensors along <paramref name="dim"/>; all other dimensions and the dtype (float32 or int32) must agree.</summary>
    public static Tensor Concat(IReadOnlyList<Tensor> tensors, int dim)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        const string op = "concat";
        if (tensors.Count == 0) throw new ArgumentException($"{op}: no tensors");
        var first = tensors[0];
        int d = ShapeText.Axis(dim, first.Rank, op);
        var outShape = (int[])first.shape.Clone();
        outShape[d] = 0;
        if (first.DType is not (DType.Float32 or DType.Int32))
            throw new NotSupportedException($"{op}: {first.Describe} must be float32 or int32");
        foreach (var t in tensors)
        {
            if (t.DType != first.DType) throw new ArgumentException($"{op}: {t.Describe} has a different dtype than {first.Describe}");
            bool ok = t.Rank == first.Rank;
            for (int i = 0; ok && i < t.Rank; i++) ok = i == d || t.shape[i] == first.shape[i];
            if (!ok) throw new ArgumentException($"{op}: {t.Describe} does not match {first.Describe} outside dimension {d}");
            outShape[d] += t.shape[d];
        }
        var y = NewOutput(outShape, op, first.DType);
        int start = 0;
        var sizes = new int[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            var t = tensors[i];
            sizes[i] = t.shape[d];
            if (sizes[i] > 0) y.NarrowNoGrad(d, start, sizes[i]).CopyFromNoVersion(t);
            start += sizes[i];
        }
        var inputs = tensors.ToArray();
        if (Autograd.ShouldRecord(inputs))
        {
            Autograd.Record(op, y, inputs, (node, g) =>
            {
                int offset = 0;
                for (int i = 0; i < sizes.Length; i++)
                {
                    if (node.NeedsGrad(i)) node.AccumulateGrad(i, g.NarrowNoGrad(d, offset, sizes[i]));
                    offset += sizes[i];
                }
            });
        }
        return y;
    }

    /// <summary>Stacks equal-shape tensors along a new dimension <paramref name="dim"/>.</summary>
    public static Tensor Stack(IReadOnlyList<Tensor> tensors, int dim)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        if (tensors.Count == 0) throw new ArgumentException("stack: no tensors");
        var expanded = new Tensor[tensors.Count];
        for (int i = 0; i < tensors.Count; i++)
        {
            if (!tensors[i].Shape.SequenceEqual(tensors[0].Shape))
                throw new ArgumentException($"stack: {tensors[i].Describe} differs from {tensors[0].Describe}");
            expanded[i] = tensors[i].Unsqueeze(dim);
        }
        return Concat(expanded, dim);
    }

    /// <summary>Splits into views of <paramref name="sizes"/> along <paramref name="dim"/> (they must sum to the dimension).</summary>
    public Tensor[] Split(int[] sizes, int dim)
    {
        ArgumentNullException.ThrowIfNull(sizes);
        int d = ShapeText.Axis(dim, Rank, "split");
        if (sizes.Sum() != shape[d])
            throw new ArgumentException($"split: sizes ({string.Join(", ", sizes)}) do not add up to dimension {d} of {Describe}");
        var parts = new Tensor[sizes.Length];
        int start = 0;
        for (int i = 0; i < sizes.Length; i++)
        {
            parts[i] = Narrow(d, start, sizes[i]);
            start += sizes[i];
        }
        return parts;
    }

    /// <summary>Splits into views of <paramref name="chunkSize"/> along <paramref name="dim"/> (the last may be smaller).</summary>
    public Tensor[] Split(int chunkSize, int dim)
    {
        int d = ShapeText.Axis(dim, Rank, "split");
        if (chunkSize <= 0) throw new ArgumentOutOfRangeException(nameof(chunkSize), "split: chunk size must be positive");
        int n = (shape[d] + chunkSize - 1) / chunkSize;
        var sizes = new int[n];
        for (int i = 0; i < n; i++) sizes[i] = Math.Min(chunkSize, shape[d] - i * chunkSize);
        return Split(sizes, d);
    }
}
