using System.Numerics.Tensors;

namespace Microsoft.ML.Peft.Tensors;

public sealed unsafe partial class Tensor
{
    private bool requiresGrad;
    private Tensor? grad;
    private Tensor? gradBuffer;

    /// <summary>
    /// Whether gradients flow to this tensor. Settable on leaves only (tensors not produced by a recorded op); only
    /// float32 tensors can require grad. Frozen tensors (false) never get a gradient and backward skips their work.
    /// </summary>
    public bool RequiresGrad
    {
        get => requiresGrad;
        set
        {
            if (GradFn is not null)
                throw new InvalidOperationException($"RequiresGrad can only be changed on leaf tensors; {Describe} is the output of '{Op}'. Use Detach().");
            if (value && DType != DType.Float32)
                throw new InvalidOperationException($"only float32 tensors can require gradients; {Describe} is {DTypeInfo.Name(DType)} (a frozen storage format)");
            requiresGrad = value;
        }
    }

    /// <summary>The accumulated gradient of a leaf (null until a backward pass reaches it, and after <see cref="ZeroGrad"/>).</summary>
    public Tensor? Grad => grad;

    /// <summary>The recorded op that produced this tensor, or null for a leaf.</summary>
    public Node? GradFn { get; private set; }

    /// <summary>Whether this tensor was not produced by a recorded op.</summary>
    public bool IsLeaf => GradFn is null;

    /// <summary>Sets <see cref="RequiresGrad"/> and returns this tensor (fluent).</summary>
    public Tensor RequiresGrad_(bool value = true)
    {
        RequiresGrad = value;
        return this;
    }

    /// <summary>Backpropagates from this one-element tensor (a loss): leaves' <see cref="Grad"/> accumulate d(this)/d(leaf).</summary>
    public void Backward()
    {
        CheckBackwardRoot();
        if (count != 1)
            throw new InvalidOperationException($"Backward() needs a one-element root but {Describe} from '{Op}' has {count} elements; pass a gradient with Backward(gradient).");
        Tensor seed;
        using (Autograd.NoGrad()) seed = Full(1f, shape);
        Autograd.RunBackward(this, seed);
    }

    /// <summary>Backpropagates from this tensor with an explicit output gradient of the same shape (vector-Jacobian product).</summary>
    public void Backward(Tensor gradient)
    {
        ArgumentNullException.ThrowIfNull(gradient);
        CheckBackwardRoot();
        if (!gradient.Shape.SequenceEqual(Shape))
            throw new ArgumentException($"Backward: gradient {gradient.ShapeString} does not match the shape of {Describe} from '{Op}'");
        gradient.RequireFloat32("Backward");
        Autograd.RunBackward(this, gradient);
    }

    /// <summary>
    /// Clears the gradient. With <paramref name="setToNone"/> (PyTorch's default) <see cref="Grad"/> becomes null so
    /// optimizers skip this tensor until it gets a new gradient; the buffer is kept and reused (no allocation).
    /// Otherwise the gradient is filled with zeros.
    /// </summary>
    public void ZeroGrad(bool setToNone = true)
    {
        if (grad is null) return;
        if (setToNone) grad = null;
        else grad.Span.Clear();
    }

    /// <summary>
    /// Drops the gradient and returns its cached buffer to the tensor pool (which <see cref="ZeroGrad"/> keeps for the
    /// next backward): for layer-wise optimizer steps, so that the next layer's gradient of the same size reuses the
    /// buffer and only one layer's gradients are resident. The next backward rents a buffer again.
    /// </summary>
    internal void ReleaseGrad()
    {
        grad = null;
        if (gradBuffer?.Storage is PooledStorage pooled && pooled.OwnerScope is null) pooled.Release();
        gradBuffer = null;
    }

    /// <summary>
    /// Lets this tensor's buffer outlive the innermost <see cref="TensorScope"/> that owns it: ownership passes to the
    /// enclosing scope, or to the garbage collector when there is none. Returns this tensor.
    /// </summary>
    public Tensor MoveToOuterScope()
    {
        if (storage is PooledStorage pooled) TensorScope.MoveOut(pooled);
        return this;
    }

    /// <summary>Takes this tensor's buffer out of every scope (module parameters and other long-lived state).</summary>
    internal void MakePersistent()
    {
        if (storage is PooledStorage pooled) TensorScope.Forget(pooled);
    }

    /// <summary>A view of the same data that is cut from the graph (no gradient flows through it).</summary>
    public Tensor Detach() => View(shape, strides, offset, "detach");

    /// <summary>Whether every element is finite (float32).</summary>
    public bool AllFinite()
    {
        if (!IsContiguous) return Contiguous().AllFinite();
        return TensorPrimitives.IsFiniteAll<float>(Span);
    }

    internal void SetGradFn(Node node)
    {
        GradFn = node;
        requiresGrad = true;
    }

    /// <summary>This leaf's gradient buffer, allocated outside any scope; see <see cref="Node.LeafGradTarget"/>.</summary>
    internal Tensor AcquireGradBuffer(out bool accumulate)
    {
        if (grad is not null)
        {
            accumulate = true;
            return grad;
        }
        if (gradBuffer is null)
        {
            using (TensorScope.Untracked()) gradBuffer = NewOutput((int[])shape.Clone(), "grad");
            gradBuffer.Name = Name is null ? null : Name + ".grad";
        }
        grad = gradBuffer;
        accumulate = false;
        return grad;
    }

    /// <summary>Adds a gradient of this leaf's shape into <see cref="Grad"/>.</summary>
    internal void AccumulateLeafGrad(Tensor g)
    {
        var target = AcquireGradBuffer(out bool accumulate);
        if (accumulate) target.AddInPlaceNoVersion(g);
        else StridedCopy.Copy<float>(g, target.Span);
    }

    private void CheckBackwardRoot()
    {
        if (!RequiresGrad)
            throw new InvalidOperationException($"Backward: {Describe} from '{Op}' does not require grad (no input of the graph requires grad, or it was computed under NoGrad).");
    }
}
