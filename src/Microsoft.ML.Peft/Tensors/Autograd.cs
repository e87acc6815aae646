namespace Microsoft.ML.Peft.Tensors;

/// <summary>
/// Tape-based reverse-mode differentiation: recording switches, anomaly detection and the backward engine.
/// </summary>
/// <remarks>
/// Every op whose inputs include a tensor with <see cref="Tensor.RequiresGrad"/> records a <see cref="Node"/> on its
/// output (unless inside <see cref="NoGrad"/>). <see cref="Tensor.Backward()"/> sorts the nodes reachable from the root
/// topologically and runs their backward functions once each, summing gradients that fan in. Gradients of leaves
/// accumulate across backward calls until <see cref="Tensor.ZeroGrad"/>. Backward functions themselves run with
/// recording off (no higher-order gradients).
/// </remarks>
public static class Autograd
{
    [ThreadStatic]
    private static int noGradDepth;

    [ThreadStatic]
    private static int anomalyDepth;

    [ThreadStatic]
    private static int epoch;

    [ThreadStatic]
    private static bool inBackward;

    [ThreadStatic]
    private static List<Node>? order;

    [ThreadStatic]
    private static Stack<(Node Node, int Next)>? stack;

    /// <summary>Whether ops record the tape on this thread (false inside <see cref="NoGrad"/>).</summary>
    public static bool IsGradEnabled => noGradDepth == 0;

    /// <summary>Whether <see cref="DetectAnomaly"/> is active on this thread.</summary>
    public static bool IsAnomalyDetectionEnabled => anomalyDepth > 0;

    /// <summary>Disables recording on this thread until the returned scope is disposed (inference, optimizer updates).</summary>
    public static ModeScope NoGrad()
    {
        noGradDepth++;
        return new ModeScope(1);
    }

    /// <summary>
    /// Re-enables recording on this thread until the returned scope is disposed, even inside <see cref="NoGrad"/> or
    /// a backward function (hook for gradient checkpointing, which recomputes a block's forward with grad during
    /// backward and back-propagates through it with a nested <see cref="Tensor.Backward(Tensor)"/>).
    /// </summary>
    public static ModeScope EnableGrad()
    {
        int saved = noGradDepth;
        noGradDepth = 0;
        return new ModeScope(3, saved);
    }

    /// <summary>
    /// Until disposed, checks every op's output and every backward gradient for NaN/Inf and throws
    /// <see cref="ArithmeticException"/> naming the first op (and its shapes) that produced one. Slow: debugging only.
    /// </summary>
    public static ModeScope DetectAnomaly()
    {
        anomalyDepth++;
        return new ModeScope(2);
    }

    /// <summary>Whether an op with this input must be recorded.</summary>
    public static bool ShouldRecord(Tensor a) => noGradDepth == 0 && a.RequiresGrad;

    /// <summary>Whether an op with these inputs must be recorded.</summary>
    public static bool ShouldRecord(Tensor a, Tensor? b) => noGradDepth == 0 && (a.RequiresGrad || (b?.RequiresGrad ?? false));

    /// <summary>Whether an op with these inputs must be recorded.</summary>
    public static bool ShouldRecord(Tensor a, Tensor? b, Tensor? c) =>
        noGradDepth == 0 && (a.RequiresGrad || (b?.RequiresGrad ?? false) || (c?.RequiresGrad ?? false));

    /// <summary>Whether an op with these inputs must be recorded.</summary>
    public static bool ShouldRecord(ReadOnlySpan<Tensor> inputs)
    {
        if (noGradDepth != 0) return false;
        foreach (var t in inputs)
        {
            if (t.RequiresGrad) return true;
        }
        return false;
    }

    /// <summary>
    /// Records an op on the tape: <paramref name="output"/> (a fresh tensor produced by the op) becomes a non-leaf that
    /// requires grad, and <paramref name="backward"/> will receive its gradient. Call only when
    /// <see cref="ShouldRecord(ReadOnlySpan{Tensor})"/> is true for <paramref name="inputs"/>.
    /// </summary>
    /// <returns>The node, e.g. to call <see cref="Node.SaveForBackward"/>.</returns>
    public static Node Record(string op, Tensor output, Tensor[] inputs, BackwardFunction backward)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (output.GradFn is not null || output.RequiresGrad)
            throw new InvalidOperationException($"{op}: output {output.Describe} is already part of the graph");
        var node = new Node(op, output.ShapeRef, inputs, backward);
        output.SetGradFn(node);
        return node;
    }

    /// <summary>In anomaly-detection mode, throws if <paramref name="output"/> of an op contains NaN or Inf.</summary>
    /// <returns><paramref name="output"/>, for chaining at the end of an op.</returns>
    public static Tensor Checked(Tensor output, Tensor? a = null, Tensor? b = null, Tensor? c = null)
    {
        // Inside backward the engine checks each node's gradients itself and names the node being differentiated.
        if (anomalyDepth > 0 && !inBackward && output.DType == DType.Float32 && !output.AllFinite())
        {
            var inputs = string.Join(", ", new[] { a, b, c }.Where(t => t is not null).Select(t => t!.Describe));
            throw new ArithmeticException(
                $"DetectAnomaly: forward of '{output.GradFn?.Op ?? output.Op}' produced NaN or Inf in its output {output.Describe} (inputs: {inputs}).");
        }
        return output;
    }

    /// <summary>Runs the backward pass from <paramref name="root"/> seeded with <paramref name="seed"/>.</summary>
    internal static void RunBackward(Tensor root, Tensor seed)
    {
        using var noGrad = NoGrad();
        if (root.GradFn is null)
        {
            root.AccumulateLeafGrad(seed);
            return;
        }
        // A backward function may run a nested backward pass (gradient checkpointing): it gets its own node list so the
        // outer pass's list, which is being walked, stays intact.
        var nodes = inBackward ? new List<Node>() : (order ??= new List<Node>(256));
        nodes.Clear();
        TopologicalOrder(root.GradFn, nodes);
        root.GradFn.PendingGrad = seed;
        root.GradFn.PendingOwned = false;
        bool outerBackward = inBackward;
        inBackward = true;
        try
        {
            for (int i = nodes.Count - 1; i >= 0; i--)
            {
                var node = nodes[i];
                var grad = node.PendingGrad;
                if (grad is null) continue;
                node.PendingGrad = null;
                node.CheckSaved();
                if (anomalyDepth > 0) CheckGradient(node, grad, "its output gradient");
                RunNode(node, grad);
                if (anomalyDepth > 0) CheckLeafGradients(node);
            }
        }
        finally
        {
            inBackward = outerBackward;
            foreach (var node in nodes) node.PendingGrad = null;
            nodes.Clear();
        }
    }

    private static void RunNode(Node node, Tensor grad)
    {
        try
        {
            node.Backward(node, grad);
        }
        catch (ObjectDisposedException e) when (!e.Message.StartsWith("backward of", StringComparison.Ordinal))
        {
            throw new ObjectDisposedException($"backward of '{node.Op}' (output {ShapeText.Format(node.OutputShape)}): {e.Message}", e);
        }
    }

    /// <summary>Post-order over the nodes reachable from <paramref name="root"/> (iterative: graphs can be deep).</summary>
    private static void TopologicalOrder(Node root, List<Node> result)
    {
        int mark = ++epoch;
        var work = stack ??= new Stack<(Node, int)>(256);
        work.Clear();
        root.VisitEpoch = mark;
        work.Push((root, 0));
        while (work.Count > 0)
        {
            var (node, next) = work.Pop();
            var inputs = node.Inputs;
            bool descended = false;
            for (int i = next; i < inputs.Count; i++)
            {
                var child = inputs[i].GradFn;
                if (child is null || child.VisitEpoch == mark) continue;
                child.VisitEpoch = mark;
                work.Push((node, i + 1));
                work.Push((child, 0));
                descended = true;
                break;
            }
            if (!descended) result.Add(node);
        }
    }

    private static void CheckGradient(Node node, Tensor grad, string what)
    {
        if (!grad.AllFinite())
            throw new ArithmeticException(
                $"DetectAnomaly: backward reached '{node.Op}' (output {ShapeText.Format(node.OutputShape)}) with NaN or Inf in {what} {grad.Describe}.");
    }

    private static void CheckLeafGradients(Node node)
    {
        for (int i = 0; i < node.Inputs.Count; i++)
        {
            var input = node.Inputs[i];
            if (input.GradFn is null && input.Grad is { } g && !g.AllFinite())
                throw new ArithmeticException(
                    $"DetectAnomaly: backward of '{node.Op}' (output {ShapeText.Format(node.OutputShape)}) produced NaN or Inf in the gradient of input #{i} {input.Describe}.");
            if (input.GradFn is { PendingGrad: { } pending } && !pending.AllFinite())
                throw new ArithmeticException(
                    $"DetectAnomaly: backward of '{node.Op}' (output {ShapeText.Format(node.OutputShape)}) produced NaN or Inf in the gradient of input #{i} {input.Describe} (output of '{input.Op}').");
        }
    }

    /// <summary>Restores the previous mode when disposed.</summary>
    public readonly struct ModeScope : IDisposable
    {
        private readonly int kind;
        private readonly int savedDepth;

        internal ModeScope(int kind, int savedDepth = 0)
        {
            this.kind = kind;
            this.savedDepth = savedDepth;
        }

        /// <summary>Leaves the mode.</summary>
        public void Dispose()
        {
            if (kind == 1) noGradDepth--;
            else if (kind == 2) anomalyDepth--;
            else if (kind == 3) noGradDepth = savedDepth;
        }
    }
}
