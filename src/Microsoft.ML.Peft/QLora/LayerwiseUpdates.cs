using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.QLora;

/// <summary>
/// Layer-wise optimizer updates during backward (GaLore's "per-layer weight updates", PyTorch's
/// <c>register_post_accumulate_grad_hook</c> recipe): a block's parameters are updated, and their gradients freed, as
/// soon as backward has finished with the block, so at most one block's parameter gradients exist at any time instead
/// of the whole model's (for TinyLlama-shaped LoRA r = 64 that is 212 MB of gradients less at the peak).
/// </summary>
/// <remarks>
/// <para>
/// How: <see cref="AfterBlockBackward"/> puts an identity node on the block's input. Backward reaches that node only
/// after the block's own backward (or its checkpoint's recompute and nested backward) has run, and a block's
/// parameters are used inside the block only, so at that moment their gradients are complete; the action runs there,
/// then the gradient flows on to the previous block unchanged.
/// </para>
/// <para>
/// The update is the one a normal step would apply: the earlier blocks' backward reads only the gradient of this
/// block's input, never its updated weights. What it cannot do is anything that needs every gradient first: global
/// gradient-norm clipping (a per-block norm would be another algorithm) and gradient accumulation over micro-batches.
/// </para>
/// </remarks>
public static class LayerwiseUpdates
{
    /// <summary>
    /// Returns <paramref name="blockInput"/> behind a node that calls <paramref name="onGradientsComplete"/> when
    /// backward has passed through everything computed from the returned tensor; feed the result to the block.
    /// </summary>
    /// <param name="blockInput">The block's input.</param>
    /// <param name="onGradientsComplete">E.g. <c>() =&gt; { blockOptimizer.Step(); blockOptimizer.ReleaseGradients(); }</c>.</param>
    /// <returns>The input itself when gradients are not recorded; otherwise an alias recorded on the tape.</returns>
    /// <remarks>
    /// When the input needs no gradient (the first block, after a frozen embedding) the node hangs off a private leaf
    /// that receives none, so it still runs; the block then also computes the gradient of its input, one extra
    /// input-gradient product per linear layer of that block only.
    /// </remarks>
    public static Tensor AfterBlockBackward(Tensor blockInput, Action onGradientsComplete)
    {
        ArgumentNullException.ThrowIfNull(blockInput);
        ArgumentNullException.ThrowIfNull(onGradientsComplete);
        if (!Autograd.IsGradEnabled) return blockInput;
        var output = blockInput.Detach();
        bool passGradient = blockInput.RequiresGrad;
        Tensor source = blockInput;
        if (!passGradient)
        {
            source = blockInput.Detach();
            source.RequiresGrad = true;
        }
        Autograd.Record("after_block_backward", output, [source], (node, grad) =>
        {
            onGradientsComplete();
            if (passGradient) node.AccumulateGrad(0, grad);
        });
        return output;
    }
}
