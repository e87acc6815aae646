using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Generation;

/// <summary>
/// Keys and values of the tokens a decoder has already seen, one preallocated [batch, kvHeads, maxLength, headDim]
/// buffer pair per layer, so each generation step computes attention for its new tokens only and appends their
/// keys/values in place (no reallocation, no concatenation).
/// </summary>
/// <remarks>
/// A forward with a cache runs its layers at positions [<see cref="Length"/>, Length + T) and then advances
/// <see cref="Length"/> by T. The buffers live outside any <see cref="TensorScope"/>. Inference only: appending
/// copies values out of the autograd graph, so a forward that records gradients refuses a cache.
/// </remarks>
public sealed class KvCache
{
    private readonly Tensor[] keys;
    private readonly Tensor[] values;

    /// <summary>Allocates zeroed buffers for <paramref name="layers"/> layers.</summary>
    public KvCache(int layers, int batch, int kvHeads, int headDim, int maxLength)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(layers);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(kvHeads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headDim);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        Batch = batch;
        MaxLength = maxLength;
        keys = new Tensor[layers];
        values = new Tensor[layers];
        using (TensorScope.Untracked())
        {
            for (int i = 0; i < layers; i++)
            {
                keys[i] = Tensor.Zeros(batch, kvHeads, maxLength, headDim);
                values[i] = Tensor.Zeros(batch, kvHeads, maxLength, headDim);
            }
        }
    }

    /// <summary>Rows (sequences) the cache holds.</summary>
    public int Batch { get; }

    /// <summary>Positions each buffer can hold.</summary>
    public int MaxLength { get; }

    /// <summary>Number of layers.</summary>
    public int Layers => keys.Length;

    /// <summary>Positions already cached (the next forward starts here).</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Leading cached positions that hold an attached soft prompt (prompt tuning's virtual tokens or prefix tuning's
    /// key/value prefix) rather than the caller's tokens: the caller's attention mask does not cover them (the model
    /// prepends ones for them), but positions count them. Set by the first forward of a model with a prompt attached.
    /// </summary>
    public int PromptLength { get; private set; }

    /// <summary>Forgets every cached position (the buffers are kept for reuse).</summary>
    public void Reset()
    {
        Length = 0;
        PromptLength = 0;
    }

    /// <summary>
    /// Writes the new keys/values [batch, kvHeads, T, headDim] of <paramref name="layer"/> at positions
    /// [<see cref="Length"/>, Length + T) and returns views of everything cached so far, [batch, kvHeads, Length + T, headDim].
    /// </summary>
    internal (Tensor Keys, Tensor Values) Append(int layer, Tensor newKeys, Tensor newValues)
    {
        int t = newKeys.Size(2);
        if (Autograd.IsGradEnabled && (newKeys.RequiresGrad || newValues.RequiresGrad))
            throw new InvalidOperationException("KvCache: a forward with a cache is inference only; run it under Autograd.NoGrad()");
        if (Length + t > MaxLength)
            throw new InvalidOperationException($"KvCache: {Length} cached + {t} new positions exceed the cache's {MaxLength}; allocate a longer cache");
        var k = keys[layer];
        var v = values[layer];
        if (newKeys.Size(0) != k.Size(0) || newKeys.Size(1) != k.Size(1) || newKeys.Size(3) != k.Size(3))
            throw new ArgumentException($"KvCache: keys {newKeys} do not fit the cache's [{k.Size(0)}, {k.Size(1)}, *, {k.Size(3)}] of layer {layer}");
        k.Narrow(2, Length, t).CopyFrom_(newKeys);
        v.Narrow(2, Length, t).CopyFrom_(newValues);
        return (k.Narrow(2, 0, Length + t), v.Narrow(2, 0, Length + t));
    }

    /// <summary>Called by the model once every layer has appended: the new positions become part of the past.</summary>
    internal void Advance(int count) => Length += count;

    /// <summary>Records that the first <paramref name="count"/> positions (being cached by the first forward) are a soft prompt.</summary>
    internal void MarkPrompt(int count)
    {
        if (Length != 0) throw new InvalidOperationException($"KvCache: a soft prompt must be the first thing cached; {Length} positions are cached already");
        PromptLength = count;
    }
}
