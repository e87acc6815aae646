using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// Edits the residual stream between transformer blocks (what representation fine-tuning, ReFT, needs): the backbone
/// calls <see cref="AfterBlock"/> with each block's output before the next block (and the final norm) reads it.
/// </summary>
public interface IResidualStreamHook
{
    /// <summary>
    /// The hidden state [batch, seq, hidden] that continues after block <paramref name="layer"/> (0-based) — the
    /// block's output itself when the hook leaves this layer alone.
    /// </summary>
    Tensor AfterBlock(int layer, Tensor hidden, ResidualStreamContext context);
}
