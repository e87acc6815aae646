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
/// <para>
/// Selective recompute (torch's selective activation checkpointing with a "must save" policy): the outputs of the
/// frozen layers named in <c>keepOutputsOf</c> are kept from the first forward and handed back during the recompute
/// instead of being computed again. The natural choice is the last projection of each residual branch (a decoder's
/// o_proj and down_proj): their outputs are cheap to store ([tokens, hidden]) but a recompute would spend a third of
/// the block's multiply-adds on them. The kept buffers are released as soon as the block's backward is done, so such
/// a checkpoint can be back-propagated once; kept layers must not sit inside a nested checkpoint.
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
    public static Tensor Checkpoint(Func<Tensor, Tensor> block, Tensor input, IEnumerable<Tensor> parameters, params Generator[] generators) =>
        Checkpoint(block, input, parameters, [], generators);

    /// <summary>
    /// As <see cref="Checkpoint(Func{Tensor, Tensor}, Tensor, IEnumerable{Tensor}, Generator[])"/>, keeping the outputs of
    /// <paramref name="keepOutputsOf"/> from the first forward so the recompute does not run them again (see remarks).
    /// </summary>
    /// <param name="block">The computation.</param>
    /// <param name="input">The block input.</param>
    /// <param name="parameters">The block's parameters.</param>
    /// <param name="keepOutputsOf">Frozen layers inside the block whose outputs are kept (today
    /// the 4-bit base layers, QuantizedLinear; other modules are not affected by being named here).</param>
    /// <param name="generators">Every random generator the block draws from.</param>
    public static Tensor Checkpoint(Func<Tensor, Tensor> block, Tensor input, IEnumerable<Tensor> parameters, IReadOnlyCollection<Module> keepOutputsOf, params Generator[] generators)
    {
        ArgumentNullException.ThrowIfNull(block);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(keepOutputsOf);
        ArgumentNullException.ThrowIfNull(generators);
        if (!Autograd.IsGradEnabled || !(input.RequiresGrad || parameters.Any(p => p.RequiresGrad))) return block(input);

        var startOffsets = new long[generators.Length];
        for (int i = 0; i < generators.Length; i++) startOffsets[i] = generators[i].Offset;

        var kept = keepOutputsOf.Count == 0 ? null : new KeptOutputs(keepOutputsOf);
        Tensor output;
        using (Autograd.NoGrad())
        {
            var scope = TensorScope.Begin();
            var outerKept = keeping;
            keeping = kept;
            try
            {
                output = block(input.Detach());
                KeepBeyond(output, scope);
                foreach (var k in kept?.Outputs ?? []) KeepBeyond(k.Output, scope);
                if (kept is not null) kept.BlockOutput = output.Storage;
            }
            finally
            {
                keeping = outerKept;
                scope.Dispose();
            }
        }
        if (output.RequiresGrad || output.GradFn is not null) output = output.Detach();
        Autograd.Record("checkpoint", output, [input], (node, g) => Recompute(node, g, block, generators, startOffsets, kept));
        return output;
    }

    /// <summary>
    /// For a frozen layer inside a checkpointed block, at the start of its forward: the output kept for it by the first
    /// forward when a recompute is running and the layer is one whose outputs the checkpoint keeps; otherwise null.
    /// </summary>
    internal static Tensor? KeptOutput(Module layer)
    {
        var kept = keeping;
        if (kept is null || !kept.Replaying || !kept.Modules.Contains(layer)) return null;
        if (kept.Used)
            throw new InvalidOperationException("checkpoint: this block's kept outputs were released by an earlier backward through it; a checkpoint that keeps outputs can be back-propagated once.");
        if (kept.Next >= kept.Outputs.Count || !ReferenceEquals(kept.Outputs[kept.Next].Layer, layer))
            throw new InvalidOperationException($"checkpoint: the recompute called the kept layers in a different order than the first forward ({layer.GetType().Name}); the block must be deterministic.");
        var (_, output, version) = kept.Outputs[kept.Next++];
        if (output.Storage.Version != version)
            throw new InvalidOperationException($"checkpoint: the kept output {output} of a {layer.GetType().Name} was modified in place after the first forward; keep only outputs the block does not overwrite.");
        return output;
    }

    /// <summary>For a frozen layer at the end of its forward: keeps <paramref name="output"/> when the first forward of a checkpoint that keeps this layer's outputs is running.</summary>
    internal static void OfferOutput(Module layer, Tensor output)
    {
        var kept = keeping;
        if (kept is null || kept.Replaying || !kept.Modules.Contains(layer)) return;
        kept.Outputs.Add((layer, output, output.Storage.Version));
    }

    [ThreadStatic]
    private static KeptOutputs? keeping;

    /// <summary>The outputs one checkpoint keeps, in the order its block produced them.</summary>
    private sealed class KeptOutputs(IReadOnlyCollection<Module> modules)
    {
        public readonly HashSet<Module> Modules = new(modules, ReferenceEqualityComparer.Instance);
        public readonly List<(Module Layer, Tensor Output, int Version)> Outputs = [];
        public bool Replaying;
        public int Next;

        /// <summary>Set once the recompute is over and the kept buffers are back in the pool.</summary>
        public bool Used;

        /// <summary>The block output's storage: never released with the kept outputs, even if a kept layer produced it.</summary>
        public TensorStorage? BlockOutput;
    }

    private static void Recompute(Node node, Tensor gradOutput, Func<Tensor, Tensor> block, Generator[] generators, long[] startOffsets, KeptOutputs? kept)
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
                Tensor y;
                var outerKept = keeping;
                keeping = kept;
                if (kept is not null) (kept.Replaying, kept.Next) = (true, 0);
                try
                {
                    y = block(x);
                }
                finally
                {
                    keeping = outerKept;
                }
                if (kept is not null && kept.Next != kept.Outputs.Count)
                    throw new InvalidOperationException($"checkpoint: the recompute used {kept.Next} of the {kept.Outputs.Count} outputs the first forward kept; the block must be deterministic, and kept layers must not sit inside a nested checkpoint.");
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
            // The kept outputs served their one recompute; their buffers go back to the pool for the next block's.
            if (kept is not null)
            {
                foreach (var k in kept.Outputs)
                {
                    if (!ReferenceEquals(k.Output.Storage, kept.BlockOutput)) k.Output.Storage.Release();
                }
                kept.Outputs.Clear();
                kept.Used = true;
            }
        }
        if (inputGrad is not null) node.AccumulateGrad(0, inputGrad);
    }

    /// <summary>Hands <paramref name="t"/>'s buffer to the enclosing scope if <paramref name="scope"/> owns it.</summary>
    private static void KeepBeyond(Tensor t, TensorScope scope)
    {
        if (ReferenceEquals(t.Storage.OwnerScope, scope)) t.MoveToOuterScope();
    }
}
