using Microsoft.ML.Peft.Generation;
using Microsoft.ML.Peft.Models.Common;
using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>
/// A causal transformer backbone (Llama family, GPT-2, GPT-NeoX): token ids → hidden states [batch, seq, hidden]
/// after the final norm, optionally continuing from a <see cref="KvCache"/>.
/// </summary>
/// <remarks>
/// Prompt learning (<see cref="IPromptHost"/>): input prompts go in front of the embeddings with positions
/// 0..n−1 (the real tokens follow from n, as transformers numbers an inputs_embeds sequence), and the output keeps
/// those n leading positions; key/value prefixes are treated as n cached positions, so the real tokens get positions
/// n.. and every query sees the whole prefix (causal masking is bottom-right aligned). Given position_ids are the real
/// tokens' (the virtual tokens keep 0..n−1 in front of them). With a <see cref="KvCache"/> the first forward puts the
/// prompt into the cache (virtual tokens through the layers, a prefix copied in) and records it as
/// <see cref="KvCache.PromptLength"/>; later forwards attend to it there. The caller's attention mask never covers
/// the prompt.
/// </remarks>
public abstract class DecoderModel : Module, IPromptHost, IInputEmbeddingsModel, IResidualStreamHost
{
    private ModuleSlot<Module>? promptSlot;
    private ModuleSlot<Module>? interventionSlot;

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

    /// <summary>Query heads per block.</summary>
    public abstract int AttentionHeads { get; }

    /// <summary>max_position_embeddings (n_positions for GPT-2).</summary>
    public abstract int MaxPositionEmbeddings { get; }

    /// <summary>
    /// Gradient checkpointing (transformers' <c>gradient_checkpointing_enable</c>): when true and gradients are
    /// recorded, each decoder block keeps only its input for backward and recomputes its activations there, replaying
    /// the dropout masks, so the parameter gradients are those of the plain forward (see <see cref="RunBlock"/>).
    /// Default false.
    /// </summary>
    public bool GradientCheckpointing { get; set; }

    /// <summary>
    /// With <see cref="GradientCheckpointing"/>: each block's checkpoint also keeps the outputs of the 4-bit base layers
    /// of its residual branches' last projections (Llama's o_proj and down_proj, GPT-2's c_proj, GPT-NeoX's dense and
    /// dense_4h_to_h), so the recompute does not run those products again (selective recompute, see
    /// <see cref="Checkpointing"/>). Costs two [tokens, hidden] float tensors per layer; saves a third of a Llama
    /// block's recomputed multiply-adds. Only quantized (QLoRA) base layers take part. Gradients are unchanged, bit
    /// for bit. Default false.
    /// </summary>
    public bool CheckpointKeepsProjectionOutputs { get; set; }

    /// <summary>Module names of the last projection of each residual branch of a block (matched as a dotted-name segment).</summary>
    private protected abstract IReadOnlyList<string> ResidualOutputProjections { get; }

    /// <inheritdoc/>
    public PromptGeometry PromptGeometry => new(GetType().Name, HiddenSize, NumLayers, AttentionHeads, KeyValueHeads, HeadDim, MaxPositionEmbeddings, IsDecoder: true);

    /// <inheritdoc/>
    public IPromptSource? PromptSource => promptSlot?.Module as IPromptSource;

    /// <inheritdoc/>
    public void SetPromptModule(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (promptSlot is null) promptSlot = RegisterModule("prompt_encoder", module);
        else ReplaceModule("prompt_encoder", module);
    }

    /// <inheritdoc/>
    public int NumBlocks => NumLayers;

    /// <inheritdoc/>
    public IResidualStreamHook? ResidualStreamHook => interventionSlot?.Module as IResidualStreamHook;

    /// <inheritdoc/>
    public void SetResidualStreamModule(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (interventionSlot is null) interventionSlot = RegisterModule("interventions", module);
        else ReplaceModule("interventions", module);
    }

    /// <inheritdoc/>
    public Tensor InputEmbeddingWeight => InputEmbeddings.Weight;

    /// <inheritdoc/>
    public Tensor Embed(Tensor inputIds)
    {
        AttentionHelpers.CheckIds(inputIds);
        return InputEmbeddings.Forward(inputIds.IsContiguous ? inputIds : inputIds.Contiguous());
    }

    /// <inheritdoc/>
    Tensor IInputEmbeddingsModel.ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask) => ForwardEmbeddings(inputsEmbeds, attentionMask);

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
        AttentionHelpers.CheckIds(inputIds);
        return ForwardEmbeddings(Embed(inputIds), attentionMask, positionIds, cache, hiddenStates);
    }

    /// <summary>
    /// As <see cref="Forward"/> from word embeddings [batch, seq, hidden] (transformers' <c>inputs_embeds</c>); GPT-2
    /// still adds its position embeddings. An attached <see cref="PromptSource"/> is applied (see the class remarks).
    /// </summary>
    public Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask = null, Tensor? positionIds = null, KvCache? cache = null, IList<Tensor>? hiddenStates = null)
    {
        ArgumentNullException.ThrowIfNull(inputsEmbeds);
        if (inputsEmbeds.Rank != 3 || inputsEmbeds.Size(2) != HiddenSize || inputsEmbeds.DType != DType.Float32)
            throw new ArgumentException($"inputs_embeds {inputsEmbeds} must be float32 [batch, seq, {HiddenSize}]");
        int b = inputsEmbeds.Size(0), t = inputsEmbeds.Size(1);
        if (cache is not null && (cache.Batch != b || cache.Layers != NumLayers))
            throw new ArgumentException($"KvCache holds {cache.Batch} sequences of {cache.Layers} layers but the input has batch {b} and the model {NumLayers} layers");

        var prompt = PromptSource;
        int virtualTokens = prompt?.InputPromptLength ?? 0, prefix = prompt?.PrefixLength ?? 0;
        // With a cache the prompt is attached by the first forward only (it becomes the cache's leading positions);
        // later forwards find it there, so the caller's mask never covers it.
        bool promptCached = cache is not null && cache.Length > 0;
        if (cache is not null && promptCached && cache.PromptLength != virtualTokens + prefix)
            throw new InvalidOperationException($"the KvCache starts with a soft prompt of {cache.PromptLength} positions but the model's attached prompt now has {virtualTokens + prefix}; reset the cache after changing the prompt adapter");
        int past = cache?.Length ?? 0;
        attentionMask = AttentionHelpers.CheckCompanion(attentionMask, "attention_mask", b, past - (cache?.PromptLength ?? 0) + t);
        if (virtualTokens > 0 && !promptCached)
        {
            inputsEmbeds = PromptPlumbing.PrependPrompt(prompt!.InputPrompt(), inputsEmbeds);
            positionIds = PromptPlumbing.PrependPromptPositions(positionIds, virtualTokens);
            t += virtualTokens;
        }
        Tensor? prefixTable = prefix > 0 ? prompt!.PrefixKeyValues() : null;
        if (cache is not null && !promptCached && virtualTokens + prefix > 0)
        {
            cache.MarkPrompt(virtualTokens + prefix);
            if (prefixTable is not null)
            {
                // The prefix becomes the cache's first positions once, so no step copies it in front of its keys again.
                for (int layer = 0; layer < NumLayers; layer++)
                    cache.Append(layer, PromptPlumbing.PrefixSlice(prefixTable, layer, 0, b), PromptPlumbing.PrefixSlice(prefixTable, layer, 1, b));
                cache.Advance(prefix);
                past = prefix;
            }
        }
        var hook = ResidualStreamHook;
        var residual = ResidualStreamContext.For(hook, attentionMask, b, t, past, promptActive: virtualTokens + prefix > 0);
        attentionMask = PromptPlumbing.PrependOnes(attentionMask, virtualTokens + prefix);
        var step = new DecoderStep
        {
            Hook = hook,
            Residual = residual,
            Positions = Positions(positionIds, b, t, cache is null ? prefix : past, out int limit),
            PositionLimit = limit,
            KeyMask = AttentionHelpers.AdditiveKeyMask(attentionMask),
            Cache = cache,
            PrefixKeyValues = cache is null ? prefixTable : null,
        };
        var hidden = ForwardCore(inputsEmbeds, step, hiddenStates);
        cache?.Advance(t);
        return hidden;
    }

    /// <summary>
    /// Runs one block of the layer loop: plainly, or under <see cref="Checkpointing.Checkpoint"/> when
    /// <see cref="GradientCheckpointing"/> is on. Every generator the block draws from (<paramref name="dropoutGenerator"/>,
    /// the model's attention-dropout stream, and those of the <see cref="Dropout"/> modules inside it, e.g. LoRA's) is
    /// rewound for the recompute, so it draws the same masks. Blocks fed from outside their input are not checkpointed:
    /// with a <see cref="KvCache"/> (inference) or prefix tuning's key/values, which come from a graph outside the block
    /// that the nested backward must not walk again.
    /// </summary>
    private protected Tensor RunBlock(Module block, Tensor input, DecoderStep step, Generator dropoutGenerator, Func<Tensor, Tensor> forward)
    {
        if (!GradientCheckpointing || !Autograd.IsGradEnabled || step.Cache is not null || step.PrefixKeyValues is not null) return forward(input);
        var generators = block.NamedModules().Select(m => m.Module).OfType<Dropout>().Select(d => d.Generator)
            .Prepend(dropoutGenerator).Distinct(ReferenceEqualityComparer.Instance).Cast<Generator>().ToArray();
        Module[] keep = CheckpointKeepsProjectionOutputs ? KeptProjections(block) : [];
        return Checkpointing.Checkpoint(forward, input, block.Parameters(), keep, generators);
    }

    /// <summary>
    /// The modules of <paramref name="block"/> under its residual-branch output projections (the projection, an
    /// adapter wrapping it, its base layer); of these only 4-bit base layers keep their outputs.
    /// </summary>
    internal Module[] KeptProjections(Module block) =>
        [.. block.NamedModules().Where(m => m.Name.Split('.').Any(ResidualOutputProjections.Contains)).Select(m => m.Module)];

    /// <summary>The architecture's forward from word embeddings [batch, seq, hidden] with masks and positions resolved.</summary>
    private protected abstract Tensor ForwardCore(Tensor inputsEmbeds, DecoderStep step, IList<Tensor>? hiddenStates);

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

    /// <summary>Prefix tuning's keys/values [2·layers, kvHeads, n, headDim] (see <see cref="IPromptSource.PrefixKeyValues"/>), or null.</summary>
    public Tensor? PrefixKeyValues { get; init; }

    /// <summary>The residual-stream hook (ReFT) and its per-forward context, or null.</summary>
    public IResidualStreamHook? Hook { get; init; }

    /// <summary>Which positions are real tokens, for <see cref="Hook"/>.</summary>
    public ResidualStreamContext? Residual { get; init; }

    /// <summary>Block <paramref name="layer"/>'s output as the next block sees it: edited by the hook, if any.</summary>
    public Tensor AfterBlock(int layer, Tensor hidden) => Hook is null ? hidden : Hook.AfterBlock(layer, hidden, Residual!);

    /// <summary>
    /// Keys/values to attend over: the new ones, or everything cached for <paramref name="layer"/> once they are
    /// appended; a prefix goes in front of them.
    /// </summary>
    public (Tensor Keys, Tensor Values) KeysAndValues(int layer, Tensor keys, Tensor values) =>
        Cache is null ? PromptPlumbing.WithPrefix(PrefixKeyValues, layer, keys, values) : Cache.Append(layer, keys, values);
}
