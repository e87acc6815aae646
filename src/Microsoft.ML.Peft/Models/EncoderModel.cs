using Microsoft.ML.Peft.NN;
using Microsoft.ML.Peft.Tensors;

namespace Microsoft.ML.Peft.Models;

/// <summary>A bidirectional transformer backbone (BERT, RoBERTa, DistilBERT): token ids → hidden states [batch, seq, hidden].</summary>
/// <remarks>
/// Prompt learning (<see cref="IPromptHost"/>): an input prompt's n virtual tokens go in front of the word embeddings
/// (position ids 0..n−1 for BERT, token type 0, as transformers embeds an inputs_embeds sequence), and the output keeps
/// those leading positions (so BERT's pooler reads the first virtual token, as PEFT's); key/value prefixes are seen by
/// every position in both directions and count as past positions (BERT's real tokens get positions n.., as
/// transformers' past_key_values_length gives them).
/// </remarks>
public abstract class EncoderModel : Module, IPromptHost, IInputEmbeddingsModel, IResidualStreamHost
{
    private ModuleSlot<Module>? promptSlot;
    private ModuleSlot<Module>? interventionSlot;

    /// <inheritdoc/>
    public abstract PromptGeometry PromptGeometry { get; }

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
    public int NumBlocks => PromptGeometry.Layers;

    /// <inheritdoc/>
    public IResidualStreamHook? ResidualStreamHook => interventionSlot?.Module as IResidualStreamHook;

    /// <inheritdoc/>
    public void SetResidualStreamModule(Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (interventionSlot is null) interventionSlot = RegisterModule("interventions", module);
        else ReplaceModule("interventions", module);
    }

    /// <summary>The residual-stream context of one forward over [batch, seq] tokens (null without a hook).</summary>
    private protected ResidualStreamContext? BeginResidualStream(Tensor? attentionMask, int batch, int seq) =>
        ResidualStreamContext.For(ResidualStreamHook, attentionMask, batch, seq, 0,
            promptActive: PromptSource is { } prompt && prompt.InputPromptLength + prompt.PrefixLength > 0);

    /// <summary>Block <paramref name="layer"/>'s output as the next block sees it: edited by the hook, if any.</summary>
    private protected Tensor AfterBlock(int layer, Tensor hidden, ResidualStreamContext? context) =>
        context is null ? hidden : ResidualStreamHook!.AfterBlock(layer, hidden, context);

    /// <inheritdoc/>
    public abstract Tensor InputEmbeddingWeight { get; }

    /// <inheritdoc/>
    public abstract Tensor Embed(Tensor inputIds);

    /// <summary>
    /// The last hidden state from word embeddings [batch, seq, hidden] (transformers' <c>inputs_embeds</c>: position
    /// and token-type embeddings are still added) with int32 <paramref name="attentionMask"/> [batch, seq] or null.
    /// </summary>
    public abstract Tensor ForwardEmbeddings(Tensor inputsEmbeds, Tensor? attentionMask);

    /// <summary>Width of the hidden states.</summary>
    public abstract int HiddenSize { get; }

    /// <summary>Whether <c>token_type_ids</c> (segment ids) change the output (BERT: yes; RoBERTa has one type; DistilBERT none).</summary>
    public abstract bool UsesTokenTypeIds { get; }

    /// <summary>
    /// The last hidden state [batch, seq, hidden]. All id tensors are int32 [batch, seq]; <paramref name="attentionMask"/>
    /// is 1 for real tokens and 0 for padding (null = no padding); <paramref name="positionIds"/> null = the model's
    /// own rule (0..seq−1, or RoBERTa's padding-aware positions). When <paramref name="hiddenStates"/> is given, the
    /// embedding output and each layer's output are appended to it (transformers' <c>output_hidden_states</c>).
    /// </summary>
    public abstract Tensor Forward(Tensor inputIds, Tensor? attentionMask = null, Tensor? tokenTypeIds = null, Tensor? positionIds = null,
        IList<Tensor>? hiddenStates = null);
}
