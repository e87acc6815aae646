using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.NN;

/// <summary>
/// Gradient checkpointing (torch.utils.checkpoint, non-reentrant semantics): trade compute for activation memory by
/// running a block's forward without keeping its intermediate tensors and recomputing them during backward.
/// </summary>
/// <remarks>
/// <para>
/// Forward: the block runs under <see cref="Autograd.NoGrad"/> inside its own <see cref="TensorScope"/>, so every
/// intermediate buffer goes back to the pool as soon as the block returns; only the output survives. One
/// "checkpoint" node is recorded in its place.
/// </para>
/// <para>
/// Backward: the node rewinds the given generators to where they stood before the forward (so dropout draws the same
/// masks), re-runs the block with recording on, inside a scope of its own, and back-propagates the incoming gradient
/// through that local graph with a nested backward pass. Parameter gradients accumulate into the parameters' own
/// buffers as usual; the gradient of the block input is captured and handed on to the outer graph. The recomputed
/// activations are released before the node returns, so at most one block's activations are alive at a time.
/// The block must be deterministic apart from the generators it is given, and must not modify its input in place.
/// </para>
/// </remarks>
public static class Checkpointing
{
    /// <summary>
    /// Computes <c>block(input)</c> without storing the block's activations for backward.
    /// </summary>
    /// <param name="block">The computation, e.g. <c>h =&gt; layer.Forward(h)</c>.</param>
    /// <param name="input">The block input.</param>
    /// <param name="parameters">The block's parameters. When none of them and not the input requires grad (or grad is
    /// disabled) the block simply runs as usual.</param>
    /// <param name="generators">Every random generator the block draws from (dropout); their positions are replayed.</param>
    /// <returns>The block output; a node on the tape when gradients are needed.</returns>
    public static Tensor Checkpoint(Func<Tensor, Tensor> block, Tensor input, IEnumerable<Tensor> parameters, params Generator[] generators)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(generators);
        if (!Autograd.IsGradEnabled || !(input.RequiresGrad || parameters.Any(p => p.RequiresGrad))) return block(input);

        var startOffsets = new long[generators.Length];
        for (int i = 0; i < generators.Length; i++) startOffsets[i] = generators[i].Offset;

        Tensor output;
        using (Autograd.NoGrad())
        {
            var scope = TensorScope.Begin();
            try
            {
                output = block(input.Detach());
                KeepBeyond(output, scope);
            }
            finally
            {
                scope.Dispose();
            }
        }
        if (output.RequiresGrad || output.GradFn is not null) output = output.Detach();
        Autograd.Record("checkpoint", output, [input], (node, g) => Recompute(node, g, block, generators, startOffsets));
        return output;
    }

    private static void Recompute(Node node, Tensor gradOutput, Func<Tensor, Tensor> block, Generator[] generators, long[] startOffsets)
    {
        var input = node.Inputs[0];
        var resumeOffsets = new long[generators.Length];
        for (int i = 0; i < generators.Length; i++)
        {
            resumeOffsets[i] = generators[i].Offset;
            generators[i].Offset = startOffsets[i];
        }

        Tensor? inputGrad = null;
        var scope = TensorScope.Begin();
        try
        {
            using (Autograd.EnableGrad())
            {
                var x = input.Detach();
                if (node.NeedsGrad(0))
                {
                    // x hangs off a private leaf through an identity node that only records the gradient reaching it,
                    // so the nested pass stops there and never allocates a gradient buffer for the leaf.
                    var anchor = input.Detach();
                    anchor.RequiresGrad = true;
                    Autograd.Record("checkpoint_input", x, [anchor], (_, g) => inputGrad = g);
                }
                var y = block(x);
                if (!y.Shape.SequenceEqual(gradOutput.Shape))
                    throw new InvalidOperationException($"checkpoint: the recomputed output {y} differs in shape from the first forward's {ShapeText.Format(gradOutput.Shape)}; the block must be deterministic.");
                if (y.RequiresGrad) y.Backward(gradOutput);
            }
            if (inputGrad is not null) KeepBeyond(inputGrad, scope);
        }
        finally
        {
            for (int i = 0; i < generators.Length; i++) generators[i].Offset = resumeOffsets[i];
            scope.Dispose();
        }
        if (inputGrad is not null) node.AccumulateGrad(0, inputGrad);
    }

    /// <summary>Hands <paramref name="t"/>'s buffer to the enclosing scope if <paramref name="scope"/> owns it.</summary>
    private static void KeepBeyond(Tensor t, TensorScope scope)
    {
        if (ReferenceEquals(t.Storage.OwnerScope, scope)) t.MoveToOuterScope();
    }
}
