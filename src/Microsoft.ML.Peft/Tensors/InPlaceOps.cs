namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Mutating ops (names end in <c>_</c>). They bump the storage version, so a backward pass that saved this storage
/// reports the modification; on a tensor that requires grad they are allowed only inside <see cref="Autograd.NoGrad"/>
/// (optimizer updates, initialisation).
/// </summary>
public sealed unsafe partial class Tensor
{
    /// <summary>Sets every element to <paramref name="value"/>.</summary>
    public Tensor Fill_(float value)
    {
        PrepareInPlace("fill_");
        if (IsContiguous) Span.Fill(value);
        else StridedAssign.Copy(Full(value, []), this);
        return this;
    }

    /// <summary>Sets every element to zero.</summary>
    public Tensor Zero_() => Fill_(0f);

    /// <summary>Copies <paramref name="source"/> (broadcastable to this shape; any float dtype is converted) into this tensor.</summary>
    public Tensor CopyFrom_(Tensor source)
    {
        ArgumentNullException.ThrowIfNull(source);
        PrepareInPlace("copy_");
        if (source.DType != DType.Float32) source = source.To(DType.Float32);
        if (source.Rank > Rank || !ShapeText.SameShape(ShapeText.Broadcast(shape, source.shape, "copy_"), shape))
            throw new ArgumentException($"copy_: source {source.Describe} does not broadcast to destination {Describe}");
        CopyFromNoVersion(source);
        return this;
    }

    /// <summary>this += alpha · other (other broadcastable to this shape).</summary>
    public Tensor Add_(Tensor other, float alpha = 1f)
    {
        ArgumentNullException.ThrowIfNull(other);
        PrepareInPlace("add_");
        other.RequireFloat32("add_");
        var target = IsContiguous ? this : throw new NotSupportedException($"add_: destination {Describe} must be contiguous");
        if (!ShapeText.SameShape(ShapeText.Broadcast(shape, other.shape, "add_"), shape))
            throw new ArgumentException($"add_: {other.Describe} does not broadcast to destination {Describe}");
        var addend = alpha == 1f ? other : other.Mul(alpha);
        BinaryKernels.Apply<AddOperator>(target, addend, target, "add_");
        return this;
    }

    /// <summary>this *= s.</summary>
    public Tensor Mul_(float s)
    {
        PrepareInPlace("mul_");
        if (!IsContiguous) throw new NotSupportedException($"mul_: destination {Describe} must be contiguous");
        MapKernels.Map(this, this, new ScalarRightMap<MultiplyOperator>(s));
        return this;
    }

    /// <summary>Copy into this (possibly strided) view without version bump or checks (backward helpers).</summary>
    internal void CopyFromNoVersion(Tensor source)
    {
        if (IsContiguous && source.IsContiguous && source.count == count) source.Span.CopyTo(Span);
        else StridedAssign.Copy(source, this);
    }

    private void PrepareInPlace(string op)
    {
        RequireFloat32(op);
        if (Autograd.IsGradEnabled && RequiresGrad)
            throw new InvalidOperationException(
                $"{op}: {Describe} requires grad; in-place changes would corrupt the graph. Modify it inside Autograd.NoGrad() (e.g. optimizer updates) or use the out-of-place op.");
        storage.BumpVersion();
    }
}
