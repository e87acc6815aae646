using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// Extra attention that an adapter adds inside a Llama-family attention module (LLaMA-Adapter's adaption prompt):
/// given the layer's rotated queries and its key/value projections, a context [batch, heads, seq, headDim] that the
/// module passes through o_proj and adds to its output; null when inactive.
/// </summary>
public interface IAttentionAdapter
{
    /// <summary>The adapter's context for <paramref name="query"/> [batch, heads, seq, headDim], or null.</summary>
    Tensor? Attend(Tensor query, LinearLayer keyProjection, LinearLayer valueProjection, int keyValueHeads, int headDim);
}
