using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// HF <c>LlamaForSequenceClassification</c> / <c>GPT2ForSequenceClassification</c> / <c>GPTNeoXForSequenceClassification</c>
/// (also Mistral, Qwen2): logits = score(h[b, last_b]) with a bias-free <c>score</c> projection, where last_b is the
/// last token of row b that is not padding — so left and right padding both work.
/// </summary>
/// <remarks>
/// With a <c>pad_token_id</c> in the config, last_b is transformers' rule: the right-most position whose id differs
/// from pad_token_id (argmax(index · (id ≠ pad)), 0 for an all-pad row). Without one (e.g. stories260K, where
/// transformers refuses batches larger than one), the right-most position with attention_mask = 1 is used, or the
/// last position when there is no mask. With an input prompt of n virtual tokens in front (prompt tuning, P-tuning)
/// the pooled position moves by n, so the last real token is still the one classified.
/// </remarks>
public sealed class DecoderForSequenceClassification : SequenceClassificationModel, IInputEmbeddingsModel
{
    private static readonly string[] Heads = ["score"];
    private readonly ModuleSlot<DecoderModel> decoder;
    private readonly ModuleSlot<LinearLayer> score;

    internal DecoderForSequenceClassification(ModelConfig config, DecoderModel decoder, string backbonePrefix)
        : base(config, backbonePrefix)
    {
        this.decoder = RegisterModule(backbonePrefix, decoder);
        score = RegisterModule<LinearLayer>("score", Placeholder.Linear(config.HiddenSize, config.NumLabels, bias: false));
    }

    /// <summary>The backbone.</summary>
    public DecoderModel Decoder => decoder.Module;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => false;

    /// <inheritdoc/>
    public override IReadOnlyList<string> HeadModuleNames => Heads;

    /// <inheritdoc/>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null)
    {
        var hidden = decoder.Module.Forward(inputIds, attentionMask, positionIds);
        return ScorePooled(hidden, PooledIndices(inputIds, attentionMask), inputIds.Size(1));
    }

    /// <inheritdoc/>
    public Tensor InputEmbeddingWeight => decoder.Module.InputEmbeddingWeight;

    /// <inheritdoc/>
    public Tensor Embed(Tensor inputIds) => decoder.Module.Embed(inputIds);

    /// <summary>Logits [batch, num_labels] from word embeddings, pooled at the last position whose mask is 1 (the last position without a mask).</summary>
    public Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask)
    {
        var hidden = decoder.Module.ForwardEmbeddings(inputsEmbeds, attentionMask);
        int b = inputsEmbeds.Size(0), t = inputsEmbeds.Size(1);
        var rows = new int[b];
        var mask = attentionMask is null ? default : (attentionMask.IsContiguous ? attentionMask : attentionMask.Contiguous()).AsReadOnlySpan<int>();
        for (int r = 0; r < b; r++)
        {
            rows[r] = t - 1;
            if (attentionMask is null) continue;
            rows[r] = 0;
            for (int i = 0; i < t; i++)
            {
                if (mask[r * t + i] != 0) rows[r] = i;
            }
        }
        return ScorePooled(hidden, rows, t);
    }

    /// <summary>score(h[b, n + rows[b]]) where n = the virtual tokens the backbone put in front of the <paramref name="seq"/> real ones.</summary>
    private Tensor ScorePooled(Tensor hidden, int[] rows, int seq)
    {
        int b = hidden.Size(0), t = hidden.Size(1), virtualTokens = t - seq;
        for (int i = 0; i < b; i++) rows[i] += i * t + virtualTokens;
        var pooled = hidden.Reshape(b * t, hidden.Size(2)).IndexSelect(0, Tensor.FromInt32(rows, b));
        return score.Module.Forward(pooled);
    }

    /// <summary>The position each row is classified at (see the class remarks).</summary>
    public int[] PooledIndices(Tensor inputIds, Tensor? attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        int b = inputIds.Size(0), t = inputIds.Size(1);
        var result = new int[b];
        var ids = (inputIds.IsContiguous ? inputIds : inputIds.Contiguous()).AsReadOnlySpan<int>();
        var mask = attentionMask is null ? default : (attentionMask.IsContiguous ? attentionMask : attentionMask.Contiguous()).AsReadOnlySpan<int>();
        int maskWidth = attentionMask?.Size(1) ?? 0;
        for (int r = 0; r < b; r++)
        {
            int last = Config.PadTokenId is null && attentionMask is null ? t - 1 : 0;
            for (int i = 0; i < t; i++)
            {
                bool real = Config.PadTokenId is int pad ? ids[r * t + i] != pad
                    : attentionMask is null || mask[r * maskWidth + maskWidth - t + i] != 0;
                if (real) last = i;
            }
            result[r] = last;
        }
        return result;
    }
}
