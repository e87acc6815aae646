namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Computes the gradients of one recorded op's inputs from the gradient of its output. Runs with autograd disabled.
/// Implementations call <see cref="Node.NeedsGrad"/> before doing any work for an input, and hand results to
/// <see cref="Node.AccumulateGrad"/> (or write straight into <see cref="Node.LeafGradTarget"/>).
/// </summary>
/// <param name="node">The node being differentiated (its inputs, saved tensors, gradient sinks).</param>
/// <param name="gradOutput">Gradient of the loss with respect to the op's output; same shape as the output.</param>
public delegate void BackwardFunction(Node node, Tensor gradOutput);

/// <summary>
/// One op on the autograd tape: its inputs, the tensors it saved for backward (with their versions) and its
/// backward function. Custom ops (e.g. a quantized matmul) record themselves with <see cref="Autograd.Record"/>.
/// </summary>
public sealed class Node
{
    private readonly Tensor[] inputs;
    private Tensor[]? saved;
    private int[]? savedVersions;

    internal Node(string op, int[] outputShape, Tensor[] inputs, BackwardFunction backward)
    {
        Op = op;
        OutputShape = outputShape;
        this.inputs = inputs;
        Backward = backward;
    }

    /// <summary>Name of the op ("matmul", "softmax", ...).</summary>
    public string Op { get; }

    /// <summary>The op's inputs, in the order the backward function indexes them.</summary>
    public IReadOnlyList<Tensor> Inputs => inputs;

    internal int[] OutputShape { get; }

    internal BackwardFunction Backward { get; }

    /// <summary>Gradient arriving from consumers, summed; null when no gradient reached this node yet.</summary>
    internal Tensor? PendingGrad { get; set; }

    /// <summary>Whether <see cref="PendingGrad"/> is a buffer this node may add into (it was created by a sum).</summary>
    internal bool PendingOwned { get; set; }

    /// <summary>Backward pass that last visited this node (topological sort marker).</summary>
    internal int VisitEpoch { get; set; }

    /// <summary>Whether input <paramref name="index"/> needs a gradient (frozen inputs are skipped entirely).</summary>
    public bool NeedsGrad(int index) => inputs[index].RequiresGrad;

    /// <summary>Records tensors needed by backward with their current versions; modifying them in place before
    /// backward is detected and reported.</summary>
    public void SaveForBackward(params Tensor[] tensors)
    {
        saved = tensors;
        savedVersions = new int[tensors.Length];
        for (int i = 0; i < tensors.Length; i++) savedVersions[i] = tensors[i].Storage.Version;
    }

    /// <summary>Adds <paramref name="grad"/> (shape of input <paramref name="index"/>) to that input's gradient.</summary>
    public void AccumulateGrad(int index, Tensor grad)
    {
        var input = inputs[index];
        if (!input.RequiresGrad) return;
        if (!grad.Shape.SequenceEqual(input.Shape))
            throw new InvalidOperationException(
                $"backward of '{Op}': gradient {grad.ShapeString} for input #{index} does not match the input's shape {input.ShapeString}");
        var producer = input.GradFn;
        if (producer is null)
        {
            input.AccumulateLeafGrad(grad);
            return;
        }
        if (producer.PendingGrad is null)
        {
            producer.PendingGrad = grad;
            producer.PendingOwned = false;
        }
        else if (producer.PendingOwned)
        {
            producer.PendingGrad.AddInPlaceNoVersion(grad);
        }
        else
        {
            producer.PendingGrad = producer.PendingGrad.AddNoGrad(grad);
            producer.PendingOwned = true;
        }
    }

    /// <summary>
    /// For an input that is a leaf needing a gradient: its gradient buffer, so a kernel can write into it directly
    /// (e.g. GEMM with beta = 1) instead of allocating a temporary. <paramref name="accumulate"/> tells whether the
    /// buffer already holds a gradient to add to (true) or must be overwritten (false). Returns null for other inputs;
    /// use <see cref="AccumulateGrad"/> for those.
    /// </summary>
    public Tensor? LeafGradTarget(int index, out bool accumulate)
    {
        var input = inputs[index];
        accumulate = false;
        if (!input.RequiresGrad || input.GradFn is not null) return null;
        return input.AcquireGradBuffer(out accumulate);
    }

    /// <summary>Throws if a saved tensor was modified in place or freed since it was saved.</summary>
    internal void CheckSaved()
    {
        if (saved is null) return;
        for (int i = 0; i < saved.Length; i++)
        {
            var t = saved[i];
            if (t.Storage.IsReleased)
                throw new ObjectDisposedException("Tensor",
                    $"backward of '{Op}': saved tensor #{i} {t.Describe} (output of '{t.Op}') was freed when its TensorScope was disposed; " +
                    "call Backward() inside the scope that ran the forward pass.");
            if (t.Storage.Version != savedVersions![i])
                throw new InvalidOperationException(
                    $"backward of '{Op}': saved tensor #{i} {t.Describe} (output of '{t.Op}') was modified in place after it was saved " +
                    $"(version {t.Storage.Version}, saved at version {savedVersions[i]}); gradients would be wrong. Use an out-of-place op instead.");
        }
    }
}
