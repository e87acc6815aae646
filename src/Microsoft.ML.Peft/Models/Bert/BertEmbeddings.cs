using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Bert;

/// <summary>
/// BERT/RoBERTa input embeddings: LayerNorm(word[ids] + position[pos] + token_type[types]), then dropout.
/// RoBERTa (<paramref name="robertaPositions"/> in the constructor) numbers positions from padding_idx + 1 over
/// non-pad tokens only, exactly as HF's <c>create_position_ids_from_input_ids</c>: pos = padding_idx + cumsum(id ≠ pad)
/// at real tokens and padding_idx at pads.
/// </summary>
public sealed class BertEmbeddings : Module
{
    private readonly ModuleSlot<Embedding> wordEmbeddings;
    private readonly ModuleSlot<Embedding> positionEmbeddings;
    private readonly ModuleSlot<Embedding> tokenTypeEmbeddings;
    private readonly ModuleSlot<LayerNorm> layerNorm;
    private readonly ModuleSlot<Dropout> dropout;
    private readonly int? paddingIndex;
    private readonly bool robertaPositions;
    private readonly int maxPositions;

    /// <summary>Embeddings for <paramref name="config"/> (placeholders until weights are bound).</summary>
    public BertEmbeddings(BertConfig config, Generator dropoutGenerator, bool robertaPositions)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.PositionEmbeddingType != "absolute")
            throw new ModelConfigException(config.SourcePath ?? "config.json", "position_embedding_type",
                $"'{config.PositionEmbeddingType}' is not supported; only 'absolute'");
        paddingIndex = config.PadTokenId;
        this.robertaPositions = robertaPositions;
        maxPositions = config.MaxPositionEmbeddings;
        int h = config.HiddenSize;
        wordEmbeddings = RegisterModule("word_embeddings", Placeholder.Embedding(config.VocabSize, h, paddingIndex));
        positionEmbeddings = RegisterModule("position_embeddings", Placeholder.Embedding(maxPositions, h, robertaPositions ? paddingIndex : null));
        tokenTypeEmbeddings = RegisterModule("token_type_embeddings", Placeholder.Embedding(config.TypeVocabSize, h));
        layerNorm = RegisterModule("LayerNorm", new LayerNorm(h, (float)config.LayerNormEps));
        dropout = RegisterModule("dropout", new Dropout((float)config.HiddenDropoutProb, dropoutGenerator));
    }

    /// <summary>The token embedding table (word_embeddings).</summary>
    public Embedding WordEmbeddings => wordEmbeddings.Module;

    /// <summary>Embeds int32 ids [B, T] → [B, T, hidden].</summary>
    public Tensor Forward(Tensor inputIds, Tensor? tokenTypeIds, Tensor? positionIds)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        var positions = positionIds ?? (robertaPositions ? RobertaPositionIds(inputIds, 0) : null);
        return ForwardWords(wordEmbeddings.Module.Forward(inputIds), tokenTypeIds, positions);
    }

    /// <summary>max_position_embeddings.</summary>
    internal int MaxPositions => maxPositions;

    /// <summary>
    /// The positions transformers gives <paramref name="seq"/> tokens after <paramref name="past"/> earlier ones (a
    /// key/value prefix) or when embeddings rather than ids come in: BERT past..past+seq−1; RoBERTa
    /// padding_idx + 1 + past.. (create_position_ids_from_inputs_embeds), or, from ids, its padding-aware rule shifted by past.
    /// </summary>
    internal Tensor DefaultPositions(Tensor? inputIds, int batch, int seq, int past)
    {
        if (robertaPositions && inputIds is not null) return RobertaPositionIds(inputIds, past);
        int first = robertaPositions ? (paddingIndex ?? 1) + 1 + past : past;
        if (first + seq > maxPositions)
            throw new ArgumentException($"{seq} tokens after {past} virtual positions need position {first + seq - 1}, beyond max_position_embeddings = {maxPositions}");
        var p = new int[batch * seq];
        for (int r = 0; r < batch; r++)
        {
            for (int i = 0; i < seq; i++) p[r * seq + i] = first + i;
        }
        return Tensor.FromInt32(p, batch, seq);
    }

    /// <summary>
    /// LayerNorm(words + position[pos] + token_type[types]), then dropout, for word embeddings [B, T, hidden];
    /// null positions = 0..T−1, null types = type 0.
    /// </summary>
    internal Tensor ForwardWords(Tensor words, Tensor? tokenTypeIds, Tensor? positions)
    {
        int seq = words.Size(1);
        if (positions is null && seq > maxPositions)
            throw new ArgumentException($"sequence length {seq} exceeds max_position_embeddings = {maxPositions}");
        // Absolute positions 0..T−1 are the first T rows of the table: a view, broadcast over the batch.
        var x = words.Add(positions is null ? LeadingRows(positionEmbeddings.Module, seq) : positionEmbeddings.Module.Forward(positions));
        // Without token types every token has type 0: add row 0 once, broadcast, instead of gathering B·T copies of it.
        x = x.Add(tokenTypeIds is null ? LeadingRows(tokenTypeEmbeddings.Module, 1) : tokenTypeEmbeddings.Module.Forward(tokenTypeIds));
        return dropout.Module.Forward(layerNorm.Module.Forward(x));
    }

    /// <summary>
    /// Rows 0..count−1 of a table, [count, dim]: a view of a float32 table; a widening lookup of a bfloat16/float16 one
    /// (elementwise ops need float32).
    /// </summary>
    internal static Tensor LeadingRows(Embedding table, int count) =>
        table.Weight.DType == DType.Float32 ? table.Weight.Narrow(0, 0, count) : table.Forward(Tensor.Arange(count, DType.Int32));

    /// <summary>RoBERTa's padding-aware positions: padding_idx + past + running count of non-pad tokens; pads get padding_idx.</summary>
    private Tensor RobertaPositionIds(Tensor inputIds, int past)
    {
        int b = inputIds.Size(0), t = inputIds.Size(1), pad = paddingIndex ?? 1;
        var ids = inputIds.AsReadOnlySpan<int>();
        var pos = new int[b * t];
        for (int r = 0; r < b; r++)
        {
            int count = 0;
            for (int i = 0; i < t; i++)
            {
                bool real = ids[r * t + i] != pad;
                if (real) count++;
                int p = real ? pad + past + count : pad;
                if (p >= maxPositions) throw new ArgumentException($"sequence of {count} tokens needs position {p}, beyond max_position_embeddings = {maxPositions}");
                pos[r * t + i] = p;
            }
        }
        return Tensor.FromInt32(pos, b, t);
    }
}
