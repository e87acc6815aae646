using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.Models.Configs;
using Microsoft.ML.Peft.Models.Loading;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models.Bert;

/// <summary>
/// HF <c>BertModel</c> / <c>RobertaModel</c>: embeddings → encoder.layer.N → optional pooler. RoBERTa is the same
/// network with padding-aware position ids (see <see cref="BertEmbeddings"/>) and, in its task models, no pooler.
/// </summary>
public sealed class BertModel : EncoderModel
{
    private readonly ModuleSlot<BertEmbeddings> embeddings;
    private readonly ModuleSlot<BertEncoder> encoder;
    private readonly ModuleSlot<BertPooler>? pooler;
    private readonly BertConfig config;

    /// <summary>A backbone for <paramref name="config"/>; RoBERTa position ids when the config is a <see cref="RobertaConfig"/>.</summary>
    public BertModel(BertConfig config, Generator dropoutGenerator, bool addPoolingLayer)
    {
        ArgumentNullException.ThrowIfNull(config);
        this.config = config;
        embeddings = RegisterModule("embeddings", new BertEmbeddings(config, dropoutGenerator, robertaPositions: config is RobertaConfig));
        encoder = RegisterModule("encoder", new BertEncoder(config, dropoutGenerator));
        if (addPoolingLayer) pooler = RegisterModule("pooler", new BertPooler(config));
    }

    /// <inheritdoc/>
    public override int HiddenSize => config.HiddenSize;

    /// <inheritdoc/>
    public override bool UsesTokenTypeIds => config.TypeVocabSize > 1;

    /// <summary>The embedding layer.</summary>
    public BertEmbeddings Embeddings => embeddings.Module;

    /// <summary>The blocks.</summary>
    public ModuleList<BertLayer> Layers => encoder.Module.Layers;

    /// <summary>Whether this backbone has the pooler (tanh(dense(h[:, 0]))).</summary>
    public bool HasPooler => pooler is not null;

    /// <inheritdoc/>
    public override PromptGeometry PromptGeometry =>
        new(GetType().Name, config.HiddenSize, config.NumHiddenLayers, config.NumAttentionHeads, config.NumAttentionHeads, config.HeadDim, config.MaxPositionEmbeddings, IsDecoder: false);

    /// <inheritdoc/>
    public override Tensor InputEmbeddingWeight => embeddings.Module.WordEmbeddings.Weight;

    /// <inheritdoc/>
    public override Tensor Embed(Tensor inputIds)
    {
        AttentionHelpers.CheckIds(inputIds);
        return embeddings.Module.WordEmbeddings.Forward(inputIds.IsContiguous ? inputIds : inputIds.Contiguous());
    }

    /// <inheritdoc/>
    public override Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null,
        IList<Tensor>? hiddenStates = null)
    {
        var (b, t) = AttentionHelpers.CheckIds(inputIds);
        inputIds = inputIds.IsContiguous ? inputIds : inputIds.Contiguous();
        attentionMask = AttentionHelpers.CheckCompanion(attentionMask, "attention_mask", b, t);
        tokenTypeIds = AttentionHelpers.CheckCompanion(tokenTypeIds, "token_type_ids", b, t);
        positionIds = AttentionHelpers.CheckCompanion(positionIds, "position_ids", b, t);
        if (PromptSource is { } prompt && prompt.InputPromptLength + prompt.PrefixLength > 0)
            return ForwardPrompted(prompt, Embed(inputIds), inputIds, attentionMask, tokenTypeIds, positionIds, hiddenStates);
        return Encode(embeddings.Module.Forward(inputIds, tokenTypeIds, positionIds), attentionMask, null, hiddenStates);
    }

    /// <inheritdoc/>
    public override Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask)
    {
        ArgumentNullException.ThrowIfNull(inputsEmbeds);
        if (inputsEmbeds.Rank != 3 || inputsEmbeds.Size(2) != config.HiddenSize)
            throw new ArgumentException($"inputs_embeds {inputsEmbeds} must be [batch, seq, {config.HiddenSize}]");
        int b = inputsEmbeds.Size(0), t = inputsEmbeds.Size(1);
        attentionMask = AttentionHelpers.CheckCompanion(attentionMask, "attention_mask", b, t);
        return ForwardPrompted(PromptSource, inputsEmbeds, null, attentionMask, null, null, null);
    }

    /// <summary>The forward from word embeddings with the attached prompt (if any) applied, positions as transformers gives them.</summary>
    private Tensor ForwardPrompted(IPromptSource? prompt, Tensor words, Tensor? inputIds, Tensor? attentionMask, Tensor? tokenTypeIds, Tensor? positionIds,
        IList<Tensor>? hiddenStates)
    {
        int b = words.Size(0), t = words.Size(1);
        int virtualTokens = prompt?.InputPromptLength ?? 0, prefix = prompt?.PrefixLength ?? 0;
        if (virtualTokens > 0)
        {
            if (positionIds is not null)
                throw new ArgumentException($"position_ids cannot be given with an input prompt of {virtualTokens} virtual tokens");
            words = PromptPlumbing.PrependPrompt(prompt!.InputPrompt(), words);
            tokenTypeIds = PrependZeros(tokenTypeIds, virtualTokens);
            inputIds = null; // transformers sees inputs_embeds only: RoBERTa's positions become sequential
            t += virtualTokens;
        }
        positionIds ??= embeddings.Module.DefaultPositions(inputIds, b, t, prefix);
        attentionMask = PromptPlumbing.PrependOnes(attentionMask, virtualTokens + prefix);
        var x = embeddings.Module.ForwardWords(words, tokenTypeIds, positionIds);
        return Encode(x, attentionMask, prefix > 0 ? prompt!.PrefixKeyValues() : null, hiddenStates);
    }

    private Tensor Encode(Tensor x, Tensor? attentionMask, Tensor? prefixKeyValues, IList<Tensor>? hiddenStates)
    {
        hiddenStates?.Add(x);
        var keyMask = AttentionHelpers.AdditiveKeyMask(attentionMask);
        var residual = BeginResidualStream(attentionMask, x.Size(0), x.Size(1));
        var layers = encoder.Module.Layers;
        for (int i = 0; i < layers.Count; i++)
        {
            x = AfterBlock(i, layers[i].Forward(x, keyMask, prefixKeyValues, i), residual);
            hiddenStates?.Add(x);
        }
        return x;
    }

    /// <summary>Token type 0 for <paramref name="count"/> leading virtual tokens (PEFT prepends zeros); null stays null.</summary>
    private static Tensor? PrependZeros(Tensor? tokenTypeIds, int count)
    {
        if (tokenTypeIds is null) return null;
        int b = tokenTypeIds.Size(0), t = tokenTypeIds.Size(1);
        var src = tokenTypeIds.AsReadOnlySpan<int>();
        var result = new int[b * (count + t)];
        for (int r = 0; r < b; r++) src.Slice(r * t, t).CopyTo(result.AsSpan(r * (count + t) + count));
        return Tensor.FromInt32(result, b, count + t);
    }

    /// <summary>The pooler output tanh(dense(h[:, 0])) [B, H] of a last hidden state.</summary>
    public Tensor Pool(Tensor lastHiddenState)
    {
        if (pooler is null) throw new InvalidOperationException("this BERT backbone was built without a pooler");
        return pooler.Module.Forward(lastHiddenState);
    }
}

/// <summary>HF <c>BertEncoder</c>: the list <c>layer</c> of <see cref="BertLayer"/>s.</summary>
public sealed class BertEncoder : Module
{
    private readonly ModuleSlot<ModuleList<BertLayer>> layer;

    /// <summary>num_hidden_layers blocks.</summary>
    public BertEncoder(BertConfig config, Generator dropoutGenerator)
    {
        ArgumentNullException.ThrowIfNull(config);
        layer = RegisterModule("layer", new ModuleList<BertLayer>(Enumerable.Range(0, config.NumHiddenLayers).Select(_ => new BertLayer(config, dropoutGenerator))));
    }

    /// <summary>The blocks, in order.</summary>
    public ModuleList<BertLayer> Layers => layer.Module;
}

/// <summary>HF <c>BertPooler</c>: tanh(dense(h[:, 0])) — the [CLS] representation the classifier reads.</summary>
public sealed class BertPooler : Module
{
    private readonly ModuleSlot<LinearLayer> dense;

    /// <summary>Creates the pooler.</summary>
    public BertPooler(BertConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        dense = RegisterModule<LinearLayer>("dense", Placeholder.Linear(config.HiddenSize, config.HiddenSize, bias: true));
    }

    /// <summary>[B, T, H] → [B, H].</summary>
    public Tensor Forward(Tensor lastHiddenState) => dense.Module.Forward(lastHiddenState.Select(1, 0)).Tanh();
}
