using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A causal transformer backbone (Llama family, GPT-2, GPT-NeoX): token ids → hidden states [batch, seq, hidden]
/// after the final norm, optionally continuing from a <see cref="KvCache"/>.
/// </summary>
public abstract class DecoderModel : Module
{
    /// <summary>Width of the hidden states.</summary>
    public abstract int HiddenSize { get; }

    /// <summary>Number of decoder blocks.</summary>
    public abstract int NumLayers { get; }

    /// <summary>Key/value heads per block (fewer than query heads under grouped-query attention).</summary>
    public abstract int KeyValueHeads { get; }

    /// <summary>Features per attention head.</summary>
    public abstract int HeadDim { get; }

    /// <summary>The token embedding table (the output projection of tied models).</summary>
    public abstract Embedding InputEmbeddings { get; }

    /// <summary>A cache able to hold <paramref name="maxLength"/> positions of <paramref name="batch"/> sequences.</summary>
    public KvCache CreateCache(int batch, int maxLength) => new(NumLayers, batch, KeyValueHeads, HeadDim, maxLength);

    /// <summary>
    /// The last hidden state [batch, seq, hidden] (after the final norm) for int32 ids [batch, seq].
    /// </summary>
    /// <param name="inputIds">Token ids [batch, seq].</param>
    /// <param name="attentionMask">
    /// int32 [batch, past + seq], 1 = real token, 0 = padding (left padding is the usual case for generation);
    /// null = no padding. A query sees key j iff j ≤ its own position and attentionMask[j] = 1.
    /// </param>
    /// <param name="positionIds">
    /// int32 [batch, seq] or [seq]; null = past..past+seq−1 for every row, as transformers' forward does.
    /// </param>
    /// <param name="cache">Keys/values of the previous positions (inference only); advanced by seq.</param>
    /// <param name="hiddenStates">When given, receives the embedding output and each block's output (before the final norm).</param>
    public Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null, IList<Tensor>? hiddenStates = null)
    {
        var (b, t) = AttentionHelpers.CheckIds(inputIds);
        inputIds = inputIds.IsContiguous ? inputIds : inputIds.Contiguous();
        int past = cache?.Length ?? 0;
        if (cache is not null && (cache.Batch != b || cache.Layers != NumLayers))
            throw new ArgumentException($"KvCache holds {cache.Batch} sequences of {cache.Layers} layers but the input has batch {b} and the model {NumLayers} layers");
        attentionMask = AttentionHelpers.CheckCompanion(attentionMask, "attention_mask", b, past + t);
        var step = new DecoderStep
        {
            Positions = Positions(positionIds, b, t, past, out int limit),
            PositionLimit = limit,
            KeyMask = AttentionHelpers.AdditiveKeyMask(attentionMask),
            Cache = cache,
        };
        var hidden = ForwardCore(inputIds, step, hiddenStates);
        cache?.Advance(t);
        return hidden;
    }

    /// <summary>The architecture's forward with masks and positions resolved.</summary>
    private protected abstract Tensor ForwardCore(Tensor inputIds, DecoderStep step, IList<Tensor>? hiddenStates);

    /// <summary>Contiguous int32 positions ([seq] when shared by every row) and their maximum + 1.</summary>
    private static Tensor Positions(Tensor? positionIds, int batch, int seq, int past, out int limit)
    {
        if (positionIds is null)
        {
            limit = past + seq;
            var p = new int[seq];
            for (int i = 0; i < seq; i++) p[i] = past + i;
            return Tensor.FromInt32(p, seq);
        }
        if (positionIds.DType != DType.Int32 || !(positionIds.Rank == 1 && positionIds.Size(0) == seq || positionIds.Rank == 2 && positionIds.Size(0) == batch && positionIds.Size(1) == seq))
            throw new ArgumentException($"position_ids {positionIds} must be an int32 tensor [{batch}, {seq}] or [{seq}]");
        var c = positionIds.IsContiguous ? positionIds : positionIds.Contiguous();
        int max = -1;
        foreach (int v in c.AsReadOnlySpan<int>())
        {
            if (v < 0) throw new ArgumentOutOfRangeException(nameof(positionIds), $"position id {v} is negative");
            max = Math.Max(max, v);
        }
        limit = max + 1;
        return c;
    }
}

/// <summary>What every block of one decoder forward shares: positions, padding mask, cache.</summary>
internal sealed class DecoderStep
{
    /// <summary>int32 positions, [seq] (same for every row) or [batch, seq].</summary>
    public required Tensor Positions { get; init; }

    /// <summary>Largest position + 1 (rows the rotary or position tables must have).</summary>
    public required int PositionLimit { get; init; }

    /// <summary>Additive key mask [batch, past + seq] (0 / −∞), or null when nothing is padded.</summary>
    public Tensor? KeyMask { get; init; }

    /// <summary>The cache to append to, or null.</summary>
    public KvCache? Cache { get; init; }

    /// <summary>Keys/values to attend over: the new ones, or everything cached for <paramref name="layer"/> once they are appended.</summary>
    public (Tensor Keys, Tensor Values) KeysAndValues(int layer, Tensor keys, Tensor values) =>
        Cache is null ? (keys, values) : Cache.Append(layer, keys, values);
}
